"""The avatar body types shared by the builder, its backends and the renderer (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Body:
    """A backend's rest body before materials: mesh, t2m rig and optional named vertex parts."""

    vertices: np.ndarray  # (V, 3) Y up, facing +Z
    faces: np.ndarray  # (F, 3)
    skin_weights: np.ndarray  # (V, 22)
    rest_joints: np.ndarray  # (22, 3)
    parts: dict[str, np.ndarray] = field(default_factory=dict)  # region name -> (V,) bool
    source: dict[str, Any] = field(default_factory=dict)  # what built it (recorded in the preset JSON)


@dataclass
class Avatar:
    """One avatar file in memory."""

    vertices: np.ndarray
    faces: np.ndarray
    skin_weights: np.ndarray
    rest_joints: np.ndarray
    vertex_region: np.ndarray
    region_colors: np.ndarray
    region_names: tuple[str, ...]
    preset: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.preset.get("name", ""))

    @property
    def height(self) -> float:
        """Stature: top of the rest mesh above the floor (m)."""
        return float(self.vertices[:, 1].max())
