"""LAVIMO losses: soft-target KL alignment between every pair of modalities + masked reconstruction MSE.

S_pred = row-softmax(cos / τ) with a learnable, log-parametrised, clamped τ (one shared by all pairs, as the
paper writes it, or one per pair). S_target(i, j) = the caption similarity s(ê_i, ê_j) where s >= ε (else 0),
diagonal = 1, rows normalised to a distribution (rule "keep", section 3.1). By default s is the raw cosine, as
the formula writes it; the scale is a setting (lavimo.text.similarity explains why there are two). The other
rules, for the study of the choice: "filter" (TMR: identity targets, and pairs with s >= ε removed from the
negatives) and "none" (identity targets).
The paper's "KL(S_pred, S_target)" is computed as KL(S_target || S_pred) (the direction that is finite when
the target has zeros, i.e. cross-entropy with soft labels up to a constant), averaged over both retrieval
directions (a -> b rows and b -> a rows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lavimo.text.similarity import (
    DEFAULT_TARGET_RULE,
    DEFAULT_TARGET_SCALE,
    DEFAULT_TARGET_THRESHOLD,
    TARGET_RULES,
    on_scale,
)

MASKED_LOGIT = -1e9  # a filtered negative's logit: exp() underflows to 0, and 0 * it stays finite in the KL


def caption_similarities(sentence_emb: Tensor, scale: str = DEFAULT_TARGET_SCALE) -> Tensor:
    """(B, D) caption embeddings -> (B, B) similarities s on ``scale`` (raw cosine or (1 + cos) / 2)."""
    emb = F.normalize(sentence_emb.detach().float(), dim=-1)
    return on_scale(emb @ emb.T, scale)


def soft_target_scores(
    sentence_emb: Tensor, threshold: float = DEFAULT_TARGET_THRESHOLD, scale: str = DEFAULT_TARGET_SCALE
) -> Tensor:
    """(B, D) caption embeddings -> (B, B) scores: s if s >= threshold else 0, diagonal = 1 (not normalised).

    Paper, section 3.1: S_target(i, j) = cos(ê_i, ê_j) where it reaches ε, else 0; the score is kept rather
    than discarded as in TMR.
    """
    sim = caption_similarities(sentence_emb, scale)
    scores = torch.where(sim >= threshold, sim, torch.zeros_like(sim))
    return scores.fill_diagonal_(1.0)


def soft_target_matrix(
    sentence_emb: Tensor, threshold: float = DEFAULT_TARGET_THRESHOLD, scale: str = DEFAULT_TARGET_SCALE
) -> Tensor:
    """(B, D) caption embeddings -> (B, B) target distribution per row (see soft_target_scores)."""
    scores = soft_target_scores(sentence_emb, threshold, scale)
    return scores / scores.sum(dim=1, keepdim=True)


def filtered_negatives(
    sentence_emb: Tensor, threshold: float = DEFAULT_TARGET_THRESHOLD, scale: str = DEFAULT_TARGET_SCALE
) -> Tensor:
    """(B, B) bool: the negatives TMR's rule leaves out, pairs i != j whose captions reach the threshold."""
    mask = caption_similarities(sentence_emb, scale) >= threshold
    return mask.fill_diagonal_(False)


def kl_to_target(logits: Tensor, target_scores: Tensor) -> Tensor:
    """Mean over rows of KL(target_row || softmax(logits_row)); target rows are normalised here."""
    target = target_scores / target_scores.sum(dim=1, keepdim=True)
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean")


def pair_loss(a: Tensor, b: Tensor, target_scores: Tensor, tau: Tensor, excluded: Tensor | None = None) -> Tensor:
    """Symmetric soft-target KL between two embedding batches (B, C); (a_i, b_i) are the positives.

    ``excluded`` (B, B) bool: pairs left out of the softmax (TMR's filtered negatives); their target must be 0.
    """
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau
    if excluded is not None:
        logits = logits.masked_fill(excluded, MASKED_LOGIT)
    return 0.5 * (kl_to_target(logits, target_scores) + kl_to_target(logits.T, target_scores.T))


def reconstruction_loss(pred: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """MSE over valid (unpadded) frames and all features; pred/target (B, T, D), lengths (B,)."""
    mask = (torch.arange(target.shape[1], device=target.device)[None] < lengths.to(target.device)[:, None]).to(
        pred.dtype
    )
    sq = (pred - target.to(pred.dtype)).pow(2).sum(dim=-1) * mask
    return sq.sum() / (mask.sum() * target.shape[-1]).clamp(min=1.0)


class AlignmentLoss(nn.Module):
    """L_align = L_mt + L_mv + L_tv (L_mt only without video), with the learnable temperature τ.

    ``rule`` / ``threshold`` / ``scale``: how caption similarity shapes the targets (module docstring).

    ``tau_per_pair=False`` (the paper writes one τ): the three pairs share ``log_tau``. ``True`` (ours, an
    ablation): L_mv and L_tv get their own ``log_tau_mv`` / ``log_tau_tv``; ``log_tau`` stays L_mt's.
    """

    def __init__(
        self,
        tau_init: float = 0.07,
        tau_min: float = 0.01,
        tau_max: float = 1.0,
        threshold: float = DEFAULT_TARGET_THRESHOLD,
        tau_per_pair: bool = False,
        rule: str = DEFAULT_TARGET_RULE,
        scale: str = DEFAULT_TARGET_SCALE,
    ):
        super().__init__()
        if rule not in TARGET_RULES:
            raise ValueError(f"unknown training-target rule {rule!r}; expected one of {list(TARGET_RULES)}")
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau_init)))
        self.log_tau_mv = nn.Parameter(torch.tensor(math.log(tau_init))) if tau_per_pair else None
        self.log_tau_tv = nn.Parameter(torch.tensor(math.log(tau_init))) if tau_per_pair else None
        self.log_tau_min = math.log(tau_min)
        self.log_tau_max = math.log(tau_max)
        self.rule, self.threshold, self.scale = rule, threshold, scale

    def _clamped(self, log_tau: Tensor | None) -> Tensor:
        return (self.log_tau if log_tau is None else log_tau).clamp(self.log_tau_min, self.log_tau_max).exp()

    @property
    def tau(self) -> Tensor:
        """The clamped temperature (of the motion-text pair when each pair has its own)."""
        return self._clamped(self.log_tau)

    def pair_taus(self) -> dict[str, Tensor]:
        """The temperature of each pair: mt, mv, tv (the same tensor three times when shared)."""
        return {"mt": self.tau, "mv": self._clamped(self.log_tau_mv), "tv": self._clamped(self.log_tau_tv)}

    def targets(self, batch: int, sentence_emb: Tensor | None, device: torch.device) -> tuple[Tensor, Tensor | None]:
        """(unnormalised target scores, negatives left out of the softmax or None) under the rule; identity
        targets (hard InfoNCE) without sentence embeddings."""
        if sentence_emb is None or self.rule == "none":
            return torch.eye(batch, device=device), None
        if self.rule == "filter":
            excluded = filtered_negatives(sentence_emb.to(device), self.threshold, self.scale)
            return torch.eye(batch, device=device), excluded
        return soft_target_scores(sentence_emb.to(device), self.threshold, self.scale), None

    def forward(
        self,
        e_m: Tensor,
        e_t: Tensor,
        e_v: Tensor | None = None,
        sentence_emb: Tensor | None = None,
        video_valid: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """-> {loss_align, loss_mt[, loss_mv, loss_tv]}; video pairs use only rows with video_valid."""
        scores, excluded = self.targets(e_m.shape[0], sentence_emb, e_m.device)
        tau = self.pair_taus()
        out = {"loss_mt": pair_loss(e_m, e_t, scores, tau["mt"], excluded)}
        if e_v is not None:
            keep = torch.ones(e_m.shape[0], dtype=torch.bool, device=e_m.device)
            if video_valid is not None:
                keep = video_valid.to(e_m.device).bool()
            sub = scores[keep][:, keep]
            sub_excluded = None if excluded is None else excluded[keep][:, keep]
            zero = e_m.new_zeros(())
            out["loss_mv"] = pair_loss(e_m[keep], e_v[keep], sub, tau["mv"], sub_excluded) if keep.any() else zero
            out["loss_tv"] = pair_loss(e_t[keep], e_v[keep], sub, tau["tv"], sub_excluded) if keep.any() else zero
        out["loss_align"] = sum(out.values(), e_m.new_zeros(()))
        return out
