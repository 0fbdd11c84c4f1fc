"""CPU-lean dropout: the numbers of ``nn.Dropout``, but a 1-byte mask (not a float32 noise tensor) kept for backward.

On the CPU, ATen's dropout multiplies the input by a float32 noise tensor (0 or 1/(1-p)) and autograd keeps that
tensor for backward: 4 bytes per element of every dropped activation. On the paper preset's training step
(batch 64, 196 frames) these noise tensors are about 1.5 GB of the ~11.7 GB autograd keeps (`lavimo bench train`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _MaskDropoutFn(torch.autograd.Function):
    """Draws exactly the random numbers of CPU ``torch.nn.functional.dropout`` (``bernoulli_(1 - p)`` on an
    ``empty_like`` of the input, then ``div_(1 - p)``), so outputs and gradients are bit-identical to it."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, p: float) -> Tensor:
        noise = torch.empty_like(x).bernoulli_(1 - p)
        ctx.save_for_backward(noise.bool())
        ctx.p = p
        return x * noise.div_(1 - p)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask.to(grad.dtype).div_(1 - ctx.p), None


class MaskDropout(nn.Dropout):
    """``nn.Dropout`` with the same numbers; on the CPU in training it keeps a bool mask for backward."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or not x.requires_grad or self.inplace:
            return super().forward(x)
        return _MaskDropoutFn.apply(x, self.p)


def lean_dropout_(module: nn.Module) -> nn.Module:
    """Make every ``nn.Dropout`` submodule of ``module`` a :class:`MaskDropout` (in place; no parameter changes,
    state dicts unchanged). Returns ``module``."""
    for child in module.modules():
        if type(child) is nn.Dropout:
            child.__class__ = MaskDropout
    return module
