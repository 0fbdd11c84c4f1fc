"""Soft-target matrix, alignment KL and reconstruction loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from lavimo.model.losses import (
    AlignmentLoss,
    pair_loss,
    reconstruction_loss,
    soft_target_matrix,
    soft_target_scores,
)


def _unit(angle_cos: float) -> list[float]:
    """A 2-D unit vector whose cosine with (1, 0) is angle_cos."""
    return [angle_cos, math.sqrt(1.0 - angle_cos**2)]


def test_soft_target_threshold_diagonal_and_normalisation() -> None:
    emb = torch.tensor([[1.0, 0.0], _unit(0.9), [0.0, 1.0], [-1.0, 0.0]]) * 3.0  # scale must not matter
    scores = soft_target_scores(emb)  # the paper's formula: raw cos >= 0.8, the cosine kept as the weight
    assert torch.allclose(scores.diag(), torch.ones(4))
    assert scores[0, 1] == pytest.approx(0.9, abs=1e-5)  # cos 0.9, kept as a score, not a hard 1
    assert scores[0, 2] == 0.0 and scores[1, 2] == 0.0  # cos 0 and ~0.44: below ε
    assert scores[0, 3] == 0.0  # opposite captions
    target = soft_target_matrix(emb)
    assert torch.allclose(target.sum(dim=1), torch.ones(4))
    assert torch.allclose(target[0], torch.tensor([1.0, 0.9, 0.0, 0.0]) / 1.9, atol=1e-5)
    assert torch.allclose(target[2], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert soft_target_scores(emb, threshold=0.95)[0, 1] == 0.0
    rescaled = soft_target_scores(emb, threshold=0.8, scale="(1+cos)/2")  # the old reading keeps s = 0.95
    assert rescaled[0, 1] == pytest.approx(0.95, abs=1e-5)


def test_default_targets_follow_the_formula_not_the_protocol_b_scale() -> None:
    """Raw cos 0.7 is below the paper's ε = 0.8: no target weight by default (section 3.1's formula), but a soft
    positive when ε is read on (1 + cos) / 2 as before (s = 0.85). Protocol (b) keeps TMR's (1 + cos) / 2."""
    from lavimo.evaluate import threshold_mask
    from lavimo.model.config import ModelConfig

    cosines = [0.3, 0.55, 0.65, 0.7, 0.8, 0.9, 0.99]
    emb = torch.tensor([[1.0, 0.0]] + [_unit(c) for c in cosines])
    config = ModelConfig.tiny()
    loss = AlignmentLoss(threshold=config.target_threshold, rule=config.soft_targets, scale=config.target_scale)
    default, excluded = loss.targets(len(emb), emb, torch.device("cpu"))
    assert excluded is None
    assert (default[0, 1:] > 0).tolist() == [False, False, False, False, True, True, True]
    assert default[0, 4] == 0.0  # cos 0.7
    old = AlignmentLoss(threshold=0.8, scale="(1+cos)/2").targets(len(emb), emb, torch.device("cpu"))[0]
    assert old[0, 4] == pytest.approx(0.85, abs=1e-5)
    assert (old[0, 1:] > 0).tolist() == [False, False, True, True, True, True, True]
    protocol_b = threshold_mask(emb.numpy(), 0.8)[0, 1:]  # (1+cos)/2 > 0.8, i.e. raw cos > 0.6
    assert protocol_b.tolist() == [False, False, True, True, True, True, True]
    # a run recorded before the scales were named keeps its own reading when its config is read back
    recorded = ModelConfig.from_dict({**config.to_dict(), "epsilon_rescaled_cos": 0.9})
    assert recorded.train_targets == ("keep", 0.8, "cos")
    stored = {k: v for k, v in config.to_dict().items() if k not in ("target_threshold", "target_scale")}
    legacy = ModelConfig.from_dict({**stored, "epsilon_rescaled_cos": 0.8})
    assert legacy.train_targets == ("keep", 0.8, "(1+cos)/2")  # a legacy ε alone: its own scale


def test_filter_rule_drops_similar_negatives_and_none_is_identity() -> None:
    """TMR's rule: identity targets, and captions at or above ε leave the softmax instead of being pulled in."""
    torch.manual_seed(0)
    emb = torch.tensor([[1.0, 0.0], _unit(0.9), [0.0, 1.0], [0.0, 1.0]])
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    tau = torch.tensor(0.1)
    filtered = AlignmentLoss(tau_init=0.1, rule="filter")
    scores, excluded = filtered.targets(4, emb, torch.device("cpu"))
    assert torch.equal(scores, torch.eye(4))
    assert excluded.tolist() == [
        [False, True, False, False],
        [True, False, False, False],
        [False, False, False, True],
        [False, False, True, False],
    ]
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau
    keep = ~excluded
    expected_rows = [-torch.log_softmax(logits[i][keep[i]], 0)[keep[i][: i + 1].sum() - 1] for i in range(4)]
    expected_cols = [-torch.log_softmax(logits.T[i][keep[i]], 0)[keep[i][: i + 1].sum() - 1] for i in range(4)]
    expected = 0.5 * (torch.stack(expected_rows).mean() + torch.stack(expected_cols).mean())
    assert pair_loss(a, b, scores, tau, excluded).item() == pytest.approx(expected.item(), rel=1e-5)
    out = filtered(a, b, sentence_emb=emb)
    assert torch.isfinite(out["loss_align"])
    none = AlignmentLoss(rule="none")
    scores, excluded = none.targets(4, emb, torch.device("cpu"))
    assert torch.equal(scores, torch.eye(4)) and excluded is None
    with pytest.raises(ValueError, match="rule"):
        AlignmentLoss(rule="pull")


def test_soft_target_symmetric_inputs() -> None:
    emb = torch.tensor([[1.0, 0.0], _unit(0.85), [1.0, 0.0], [0.0, 1.0]])
    scores = soft_target_scores(emb)
    assert torch.allclose(scores, scores.T)
    target = soft_target_matrix(emb)
    # identical captions 0 and 2 are each other's positives with the diagonal's weight
    assert target[0, 2] == pytest.approx(target[0, 0]) and torch.allclose(target[0], target[2])
    # one-hot captions -> identity
    assert torch.allclose(soft_target_matrix(torch.eye(5)), torch.eye(5))


def test_identity_targets_equal_symmetric_infonce() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(6, 8), torch.randn(6, 8)
    tau = torch.tensor(0.1)
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau
    labels = torch.arange(6)
    infonce = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    assert pair_loss(a, b, torch.eye(6), tau) == pytest.approx(infonce.item(), rel=1e-5)


def test_alignment_loss_terms_temperature_and_video_mask() -> None:
    torch.manual_seed(0)
    loss = AlignmentLoss(tau_init=0.07, tau_min=0.01, tau_max=1.0)
    e_m, e_t, e_v = (torch.randn(5, 8, requires_grad=True) for _ in range(3))
    out = loss(e_m, e_t, e_v, sentence_emb=torch.eye(5))
    assert set(out) == {"loss_mt", "loss_mv", "loss_tv", "loss_align"}
    assert out["loss_align"].item() == pytest.approx(sum(out[k].item() for k in ("loss_mt", "loss_mv", "loss_tv")))
    out["loss_align"].backward()
    assert loss.log_tau.grad is not None and loss.log_tau.grad.abs() > 0
    assert loss.tau.item() == pytest.approx(0.07)
    with torch.no_grad():
        loss.log_tau.fill_(10.0)
    assert loss.tau.item() == pytest.approx(1.0)
    valid = torch.tensor([True, False, True, True, False])
    masked = loss(e_m, e_t, e_v, sentence_emb=torch.eye(5), video_valid=valid)
    expected = pair_loss(e_m[valid], e_v[valid], torch.eye(3), loss.tau)
    assert masked["loss_mv"].item() == pytest.approx(expected.item())
    assert masked["loss_mt"].item() == pytest.approx(pair_loss(e_m, e_t, torch.eye(5), loss.tau).item())


def test_aligned_embeddings_have_lower_loss() -> None:
    torch.manual_seed(0)
    e = torch.randn(8, 16)
    loss = AlignmentLoss()
    aligned = loss(e, e + 0.01 * torch.randn(8, 16))["loss_mt"]
    shuffled = loss(e, e[torch.randperm(8)])["loss_mt"]
    assert aligned < shuffled


def test_reconstruction_loss_ignores_padding() -> None:
    torch.manual_seed(0)
    pred, target = torch.randn(2, 6, 4), torch.randn(2, 6, 4)
    lengths = torch.tensor([6, 3])
    value = reconstruction_loss(pred, target, lengths)
    manual = torch.cat([(pred[0] - target[0]).pow(2).flatten(), (pred[1, :3] - target[1, :3]).pow(2).flatten()])
    assert value.item() == pytest.approx(manual.mean().item())
    target[1, 3:] = 1e3
    assert reconstruction_loss(pred, target, lengths).item() == pytest.approx(value.item())
