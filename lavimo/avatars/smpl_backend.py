"""Avatar bodies from user-supplied SMPL / SMPL-X model files (as in the paper), through ``smplx``.

``smpl_model_dir`` holds ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (directly or under ``smpl/``) or
``SMPLX_{...}.npz|pkl`` (directly or under ``smplx/``); a preset whose gender has no file uses the
neutral one. The original SMPL .pkl files pickle ``chumpy`` arrays: load them once with chumpy
installed and re-save plain numpy arrays (what ``smplx``'s tools do) if unpickling fails.

SMPL's first 22 joints are the t2m joints (same order, Y up, facing +Z, +X the body's left), so the
rest joints are SMPL's own; the weights of the hand joints (SMPL 22-23; SMPL-X fingers) go to the
wrists and those of jaw and eyes (SMPL-X) to the head.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from lavimo.avatars.body import Body
from lavimo.io import LavimoInputError

log = logging.getLogger(__name__)

MODEL_FILES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("smpl", "SMPL", ("pkl",)),
    ("smplx", "SMPLX", ("npz", "pkl")),
)
NUM_BETAS = 10


def find_model_file(model_dir: str | os.PathLike[str], gender: str) -> tuple[Path, str]:
    """(model file, model type) for ``gender``, falling back to the neutral model."""
    root = Path(model_dir)
    if not root.is_dir():
        raise LavimoInputError(root, "SMPL model directory does not exist")
    for wanted in dict.fromkeys((gender, "neutral")):
        for model_type, stem, exts in MODEL_FILES:
            for sub in ("", model_type):
                for ext in exts:
                    path = root / sub / f"{stem}_{wanted.upper()}.{ext}"
                    if path.is_file():
                        return path, model_type
    raise LavimoInputError(root, f"no SMPL_{gender.upper()}.pkl / SMPL_NEUTRAL.pkl (or SMPLX_*) model file found")


def load_smpl(path: Path, model_type: str) -> Any:
    """An ``smplx`` body model from one model file."""
    import smplx

    kwargs: dict[str, Any] = {"model_path": str(path), "num_betas": NUM_BETAS}
    try:
        if model_type == "smplx":
            return smplx.SMPLX(use_pca=False, ext=path.suffix[1:], **kwargs)
        return smplx.SMPL(**kwargs)
    except Exception as error:  # smplx raises many kinds on bad files
        raise LavimoInputError(path, f"cannot load the {model_type} model ({type(error).__name__}: {error})") from error


def joint_map(num_model_joints: int) -> np.ndarray:
    """t2m joint (num_model_joints,) for every SMPL / SMPL-X joint."""
    mapping = np.arange(num_model_joints)
    mapping[22:] = 15  # SMPL-X jaw and eyes
    if num_model_joints == 24:  # SMPL hands
        mapping[22:] = (20, 21)
    elif num_model_joints == 55:  # SMPL-X: 25..39 left fingers, 40..54 right fingers
        mapping[25:40], mapping[40:55] = 20, 21
    elif num_model_joints > 22:
        raise LavimoInputError("<smpl model>", f"unexpected number of joints {num_model_joints}")
    return mapping


def smpl_body(model: Any, betas: list[float], source: dict[str, Any]) -> Body:
    """Rest body of one SMPL model for ``betas``."""
    import torch

    n = model.shapedirs.shape[-1]
    shape = torch.zeros((1, n), dtype=model.shapedirs.dtype)
    shape[0, : min(n, len(betas))] = torch.as_tensor(betas[:n], dtype=shape.dtype)
    with torch.no_grad():
        out = model(betas=shape, return_verts=True)
    weights_all = model.lbs_weights.double().numpy()
    mapping = joint_map(weights_all.shape[1])
    weights = np.zeros((len(weights_all), 22))
    np.add.at(weights.T, mapping, weights_all.T)
    return Body(
        vertices=out.vertices[0].double().numpy(),
        faces=np.asarray(model.faces, dtype=np.int32),
        skin_weights=weights / weights.sum(1, keepdims=True),
        rest_joints=out.joints[0, :22].double().numpy(),
        source=source,
    )


def smpl_bodies(
    presets: tuple[dict[str, Any], ...] | list[dict[str, Any]], model_dir: str | os.PathLike[str]
) -> list[Body]:
    """One rest body per preset from its ``betas`` and ``smpl_gender``."""
    models: dict[Path, Any] = {}
    bodies = []
    for preset in presets:
        path, model_type = find_model_file(model_dir, preset["smpl_gender"])
        if path not in models:
            log.info("loading %s model %s", model_type, path)
            models[path] = load_smpl(path, model_type)
        source = {"model": model_type, "file": path.name, "gender": preset["smpl_gender"]}
        bodies.append(smpl_body(models[path], list(preset["betas"]), source))
    return bodies
