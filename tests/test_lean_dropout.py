"""The CPU-lean dropout of the transformer encoders: same numbers as nn.Dropout, a 1-byte mask kept for backward."""

from __future__ import annotations

import copy

import torch
from torch import nn

from lavimo.model.config import ModelConfig
from lavimo.model.dropout import MaskDropout, lean_dropout_
from lavimo.model.lavimo import LAVIMO
from lavimo.model.layers import make_encoder


def _step(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    x = x.detach().clone().requires_grad_()
    y = model(x, src_key_padding_mask=mask)
    y.square().sum().backward()
    return y.detach(), x.grad, *(p.grad for p in model.parameters())


def test_encoder_dropout_is_bit_identical_to_nn_dropout_and_keeps_a_bool_mask() -> None:
    torch.manual_seed(0)
    lean = lean_dropout_(make_encoder(ModelConfig.tiny(dropout=0.1), 2)).train()
    assert sum(type(m) is MaskDropout for m in lean.modules()) == 6  # dropout, dropout1, dropout2 per layer
    plain = copy.deepcopy(lean)
    for module in plain.modules():
        if type(module) is MaskDropout:
            module.__class__ = nn.Dropout
    x, mask = torch.randn(3, 9, 32), torch.zeros(3, 9, dtype=torch.bool)
    mask[0, 6:] = True
    for a, b in zip(_step(plain, x, mask), _step(lean, x, mask), strict=True):
        assert torch.equal(a, b)
    saved: list[torch.dtype] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        lean(x.requires_grad_(), src_key_padding_mask=mask)
    assert torch.bool in saved
    lean.eval()  # eval: identity, as nn.Dropout
    assert torch.equal(lean.layers[0].dropout(x), x)


def test_every_dropout_of_the_model_is_lean() -> None:
    model = LAVIMO(ModelConfig.tiny(dropout=0.1))
    assert not [name for name, m in model.named_modules() if type(m) is nn.Dropout]
    assert sum(type(m) is MaskDropout for m in model.decoder.modules()) >= 4  # decoder layers too
