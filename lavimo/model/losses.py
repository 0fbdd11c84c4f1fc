"""LAVIMO losses: soft-target KL alignment between every pair of modalities + masked reconstruction MSE.

S_pred = row-softmax(cos / τ) with a learnable, log-parametrised, clamped τ (one shared by all pairs, as the
paper writes it, or one per pair). S_target(i, j) = the caption similarity s(ê_i, ê_j) where s >= ε (else 0),
diagonal = 1, rows normalised to a distribution. s and ε are on the (1 + cos) / 2 scale of protocol (b)
(lavimo.text.similarity: the paper's ε is "the negative filtering threshold" of TMR, which reads it there).
The paper's "KL(S_pred, S_target)" is computed as KL(S_target || S_pred) (the direction that is finite when
the target has zeros, i.e. cross-entropy with soft labels up to a constant), averaged over both retrieval
directions (a -> b rows and b -> a rows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lavimo.text.similarity import DEFAULT_EPSILON, caption_similarity


def soft_target_scores(sentence_emb: Tensor, epsilon: float) -> Tensor:
    """(B, D) caption embeddings -> (B, B) scores: s = (1+cos)/2 if s >= epsilon else 0, diagonal = 1.

    Paper, section 3.1: "instead of discarding scores above the threshold ϵ, we retain these scores in
    S_target" (not normalised here).
    """
    emb = F.normalize(sentence_emb.detach().float(), dim=-1)
    sim = caption_similarity(emb @ emb.T)
    scores = torch.where(sim >= epsilon, sim, torch.zeros_like(sim))
    return scores.fill_diagonal_(1.0)


def soft_target_matrix(sentence_emb: Tensor, epsilon: float = DEFAULT_EPSILON) -> Tensor:
    """(B, D) caption embeddings -> (B, B) target distribution per row (see soft_target_scores)."""
    scores = soft_target_scores(sentence_emb, epsilon)
    return scores / scores.sum(dim=1, keepdim=True)


def kl_to_target(logits: Tensor, target_scores: Tensor) -> Tensor:
    """Mean over rows of KL(target_row || softmax(logits_row)); target rows are normalised here."""
    target = target_scores / target_scores.sum(dim=1, keepdim=True)
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean")


def pair_loss(a: Tensor, b: Tensor, target_scores: Tensor, tau: Tensor) -> Tensor:
    """Symmetric soft-target KL between two embedding batches (B, C); (a_i, b_i) are the positives."""
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau
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

    ``tau_per_pair=False`` (the paper writes one τ): the three pairs share ``log_tau``. ``True`` (ours, an
    ablation): L_mv and L_tv get their own ``log_tau_mv`` / ``log_tau_tv``; ``log_tau`` stays L_mt's.
    """

    def __init__(
        self,
        tau_init: float = 0.07,
        tau_min: float = 0.01,
        tau_max: float = 1.0,
        epsilon: float = DEFAULT_EPSILON,
        tau_per_pair: bool = False,
    ):
        super().__init__()
        self.log_tau = nn.Parameter(torch.tensor(math.log(tau_init)))
        self.log_tau_mv = nn.Parameter(torch.tensor(math.log(tau_init))) if tau_per_pair else None
        self.log_tau_tv = nn.Parameter(torch.tensor(math.log(tau_init))) if tau_per_pair else None
        self.log_tau_min = math.log(tau_min)
        self.log_tau_max = math.log(tau_max)
        self.epsilon = epsilon

    def _clamped(self, log_tau: Tensor | None) -> Tensor:
        return (self.log_tau if log_tau is None else log_tau).clamp(self.log_tau_min, self.log_tau_max).exp()

    @property
    def tau(self) -> Tensor:
        """The clamped temperature (of the motion-text pair when each pair has its own)."""
        return self._clamped(self.log_tau)

    def pair_taus(self) -> dict[str, Tensor]:
        """The temperature of each pair: mt, mv, tv (the same tensor three times when shared)."""
        return {"mt": self.tau, "mv": self._clamped(self.log_tau_mv), "tv": self._clamped(self.log_tau_tv)}

    def targets(self, batch: int, sentence_emb: Tensor | None, device: torch.device) -> Tensor:
        """Unnormalised target scores; identity (hard InfoNCE) without sentence embeddings."""
        if sentence_emb is None:
            return torch.eye(batch, device=device)
        return soft_target_scores(sentence_emb.to(device), self.epsilon)

    def forward(
        self,
        e_m: Tensor,
        e_t: Tensor,
        e_v: Tensor | None = None,
        sentence_emb: Tensor | None = None,
        video_valid: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """-> {loss_align, loss_mt[, loss_mv, loss_tv]}; video pairs use only rows with video_valid."""
        scores = self.targets(e_m.shape[0], sentence_emb, e_m.device)
        tau = self.pair_taus()
        out = {"loss_mt": pair_loss(e_m, e_t, scores, tau["mt"])}
        if e_v is not None:
            keep = torch.ones(e_m.shape[0], dtype=torch.bool, device=e_m.device)
            if video_valid is not None:
                keep = video_valid.to(e_m.device).bool()
            sub = scores[keep][:, keep]
            out["loss_mv"] = pair_loss(e_m[keep], e_v[keep], sub, tau["mv"]) if keep.any() else e_m.new_zeros(())
            out["loss_tv"] = pair_loss(e_t[keep], e_v[keep], sub, tau["tv"]) if keep.any() else e_m.new_zeros(())
        out["loss_align"] = sum(out.values(), e_m.new_zeros(()))
        return out
