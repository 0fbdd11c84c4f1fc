"""Frame sampling and clip-consistent augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as tvf

from lavimo.frame_sampling import uniform_frame_indices
from lavimo.video.augment import AugmentConfig, gaussian_blur_fast, make_views
from lavimo.video.draws import view_flipped, view_seed

CFG = AugmentConfig()


def _clip(n: int = 8, size: int = 256, same: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (1 if same else n, 3, size, size), generator=g, dtype=torch.uint8)
    return frames.repeat(n, 1, 1, 1) if same else frames


def test_uniform_frame_indices() -> None:
    assert uniform_frame_indices(80, 8).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert uniform_frame_indices(8, 8).tolist() == list(range(8))
    short = uniform_frame_indices(3, 8)
    assert len(short) == 8 and short.min() == 0 and short.max() == 2 and np.all(np.diff(short) >= 0)
    with pytest.raises(ValueError):
        uniform_frame_indices(0, 8)


def test_views_share_params_across_frames_and_differ_across_views() -> None:
    views = make_views(_clip(same=True), "clip", 4, CFG, 224, seed=0, train=True)
    assert views.shape == (4, 8, 3, 224, 224) and views.dtype == torch.uint8
    for view in views:  # identical input frames -> identical output frames: one draw per view
        assert torch.equal(view, view[:1].expand_as(view))
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.equal(views[a], views[b])


def test_views_keep_frame_differences() -> None:
    """Distinct frames stay distinct; the same view of a clip is reproducible from (seed, clip, view)."""
    clip = _clip()
    first = make_views(clip, "clip", 2, CFG, 224, seed=3, train=True)
    assert not torch.equal(first[0, 0], first[0, 1])
    assert torch.equal(first, make_views(clip, "clip", 2, CFG, 224, seed=3, train=True))
    assert not torch.equal(first, make_views(clip, "clip", 2, CFG, 224, seed=4, train=True))
    assert view_seed(0, "a", 0) != view_seed(0, "a", 1) != view_seed(0, "b", 0)


def test_clean_view_is_deterministic_and_does_not_touch_global_rng() -> None:
    clip = _clip(size=320)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clean = make_views(clip, "clip", 4, CFG, 224, seed=0, train=False)
    make_views(clip, "clip", 2, CFG, 224, seed=0, train=True)
    assert torch.equal(torch.rand(3), expected)
    assert clean.shape == (1, 8, 3, 224, 224)
    assert torch.equal(clean, make_views(clip, "other", 1, CFG, 224, seed=9, train=False))


def test_fast_blur_matches_torchvision() -> None:
    frames = _clip(n=2, size=64)
    for sigma in (0.3, 1.0, 2.0):
        ours = gaussian_blur_fast(frames, sigma, 23).int()
        ref = tvf.gaussian_blur(frames, [23, 23], [sigma, sigma]).int()
        assert (ours - ref).abs().max() <= 1


def test_the_flip_is_its_own_draw_and_the_other_ops_keep_their_stream() -> None:
    """A view is flipped exactly when view_flipped says so, and its other random ops are the unflipped view's: so
    training can pair a flipped view with the mirrored motion (hflip_pairing: mirror)."""
    import dataclasses

    clip = _clip(n=2)
    draws = [view_flipped(0, "clip", v, CFG.hflip_p) for v in range(16)]
    assert 4 <= sum(draws) <= 12  # p = 0.5
    assert [view_flipped(0, "clip", v, 0.0) for v in range(16)] == [False] * 16
    assert [view_flipped(0, "clip", v, 1.0) for v in range(16)] == [True] * 16
    flipped = make_views(clip, "clip", 16, CFG, 64, seed=0, train=True)
    never = make_views(clip, "clip", 16, dataclasses.replace(CFG, hflip_p=0.0), 64, seed=0, train=True)
    for v, was_flipped in enumerate(draws):
        assert torch.equal(flipped[v], never[v].flip(-1) if was_flipped else never[v])
