"""CPU-lean dropout: ``nn.Dropout``'s distribution from a fast random source, with a 1-byte mask kept for backward.

On the CPU, ATen's dropout draws a float32 noise tensor with ``bernoulli_`` (scalar Mersenne Twister: about 7 ns
per element here, 22% of a demo training step in the torch profiler) and autograd keeps that tensor for backward,
4 bytes per element of every dropped activation (about 1.5 GB of the ~11.7 GB autograd keeps in the paper preset's
training step, `lavimo bench train`). Here the keep mask comes from numpy's PCG64 (16 random bits per element,
about 1 ns), seeded by one draw from torch's generator, so ``torch.manual_seed`` still makes a run repeatable,
and only the bool mask is saved. The random numbers differ from ``nn.Dropout``'s; the distribution is the same:
each element is kept with probability 1 - p (to within 2^-16) and scaled by 1 / (1 - p).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

_MASK_BITS = 16


def keep_mask(like: Tensor, p: float) -> Tensor:
    """A bool CPU tensor of ``like``'s shape, each element True with probability ``1 - p`` (independently)."""
    seed = int(torch.randint(0, 2**62, (1,)))  # from torch's default generator: torch.manual_seed governs it
    bits = np.random.Generator(np.random.PCG64(seed)).bytes(like.numel() * _MASK_BITS // 8)
    threshold = round((1 - p) * 2**_MASK_BITS)
    return torch.from_numpy(np.frombuffer(bits, dtype=np.uint16) < threshold).view(like.shape)


class _MaskDropoutFn(torch.autograd.Function):
    """Dropout with a :func:`keep_mask`; the mask (1 byte per element) is what backward keeps."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, p: float) -> Tensor:
        mask = keep_mask(x, p)
        ctx.save_for_backward(mask)
        ctx.scale = 1 / (1 - p)
        return x * mask * ctx.scale

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask * ctx.scale, None


class MaskDropout(nn.Dropout):
    """``nn.Dropout`` (same distribution, same state dict); on the CPU in training it draws its mask with
    :func:`keep_mask` and keeps only that bool mask for backward."""

    def forward(self, x: Tensor) -> Tensor:
        lean = self.training and 0 < self.p < 1 and x.device.type == "cpu" and x.requires_grad and not self.inplace
        return _MaskDropoutFn.apply(x, self.p) if lean else super().forward(x)


def lean_dropout_(module: nn.Module) -> nn.Module:
    """Make every ``nn.Dropout`` submodule of ``module`` a :class:`MaskDropout` (in place; no parameter changes,
    state dicts unchanged). Returns ``module``."""
    for child in module.modules():
        if type(child) is nn.Dropout:
            child.__class__ = MaskDropout
    return module
