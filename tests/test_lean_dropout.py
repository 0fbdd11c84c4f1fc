"""The CPU-lean dropout of the transformer encoders: nn.Dropout's distribution, a 1-byte mask kept for backward."""

from __future__ import annotations

import copy

import torch
from torch import nn

from lavimo.model.config import ModelConfig
from lavimo.model.dropout import MaskDropout, lean_dropout_
from lavimo.model.lavimo import LAVIMO
from lavimo.model.layers import make_encoder


def _lean_forward(dropout: nn.Module, x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and input gradient (of ``output.sum()``) of one training forward/backward under ``seed``."""
    torch.manual_seed(seed)
    x = x.detach().clone().requires_grad_()
    y = dropout(x)
    y.sum().backward()
    return y.detach(), x.grad


def test_mask_dropout_has_nn_dropouts_distribution_and_keeps_a_bool_mask() -> None:
    p = 0.1
    lean = MaskDropout(p).train()
    x = torch.rand(256, 64, 64) + 0.5  # no zeros: a zero output means dropped
    y, grad = _lean_forward(lean, x, seed=3)
    kept = y != 0
    n = kept.numel()
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * (p * (1 - p) / n) ** 0.5  # within 5 sigma (n = 1M)
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))  # kept elements scaled as nn.Dropout scales them
    torch.testing.assert_close(grad, kept.float() / (1 - p))  # backward drops the same elements
    # repeatable under torch.manual_seed, a different mask for another seed
    assert torch.equal(_lean_forward(lean, x, seed=3)[0], y)
    assert not torch.equal(_lean_forward(lean, x, seed=4)[0], y)
    # what autograd keeps is the bool mask, not a float noise tensor of the input's size
    saved: list[torch.dtype] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        lean(x.requires_grad_())
    assert saved == [torch.bool]
    assert torch.equal(lean.eval()(x), x)  # eval: identity, as nn.Dropout


def test_encoder_dropouts_are_lean_and_match_nn_dropout_in_eval() -> None:
    torch.manual_seed(0)
    lean = lean_dropout_(make_encoder(ModelConfig.tiny(dropout=0.1), 2))
    assert sum(type(m) is MaskDropout for m in lean.modules()) == 6  # dropout, dropout1, dropout2 per layer
    plain = copy.deepcopy(lean)
    for module in plain.modules():
        if type(module) is MaskDropout:
            module.__class__ = nn.Dropout
    x, mask = torch.randn(3, 9, 32), torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 6:] = True
    assert lean.state_dict().keys() == plain.state_dict().keys()
    torch.testing.assert_close(lean.eval()(x, src_key_padding_mask=mask), plain.eval()(x, src_key_padding_mask=mask))
    lean.train()
    torch.manual_seed(1)
    first = lean(x.requires_grad_(), src_key_padding_mask=mask)
    assert torch.isfinite(first).all() and not torch.equal(first, lean.eval()(x, src_key_padding_mask=mask))


def test_every_dropout_of_the_model_is_lean() -> None:
    model = LAVIMO(ModelConfig.tiny(dropout=0.1))
    assert not [name for name, m in model.named_modules() if type(m) is nn.Dropout]
    assert sum(type(m) is MaskDropout for m in model.decoder.modules()) >= 4  # decoder layers too
