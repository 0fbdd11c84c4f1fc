"""The Blender studio: one scene per process with every avatar mesh loaded once (imports bpy).

Motion coordinates (Y up, metres) are converted here to Blender's (Z up): (x, y, z) -> (x, -z, y).
Poses are applied by writing the skinned vertex positions into each avatar's mesh, no armature.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from mathutils import Vector

from lavimo.render import floor
from lavimo.render.antialias import fxaa
from lavimo.render.engines import check_engine
from lavimo.render.readback import encode_srgb, read_exr_planes

log = logging.getLogger(__name__)

BACKGROUND_LINEAR = (0.50, 0.51, 0.53)  # neutral light grey (world colour)
FLOOR_SIZE_M = 400.0
GRID_LIFT_M = 0.001  # the grid patch lies this far above the plain floor
SHADOW_LIFT_M = 0.002  # and the contact-shadow patch above the grid
STUDIO_LIGHT = "paint.sl"
GRID_CACHE = 6  # grid textures kept per process: clips on similar paths share one
RAM_TMP = Path("/dev/shm")  # where Blender writes each frame for us to read back, when it exists


@dataclass(frozen=True)
class StudioSettings:
    """How frames are rendered."""

    engine: str = "workbench"  # workbench | cycles | eevee
    resolution: int = 512
    force_engine: bool = False  # eevee without a GPU
    workbench_aa: str = "OFF"  # Workbench's own anti-aliasing (OFF, FXAA, 5, 8, 11, 16, 32): one render per sample
    fxaa: bool = True  # numpy FXAA on the rendered frame (fast; on top of workbench_aa OFF)
    shadows: bool = True  # Workbench: soft contact shadow patch under the body
    samples: int = 32  # Cycles / EEVEE samples
    device: str = "CPU"  # Cycles: CPU | GPU
    threads: int = 0  # render threads; 0: all cores
    mesh_detail: float = 0.5  # fraction of an avatar's triangles rendered (0.5: anny as light as SMPL's 13,776)

    def __post_init__(self) -> None:
        if not 0.0 < self.mesh_detail <= 1.0:
            raise ValueError(f"mesh_detail must be in (0, 1], got {self.mesh_detail}")


def to_blender(points: np.ndarray) -> np.ndarray:
    """Motion coordinates (Y up) -> Blender coordinates (Z up), float32."""
    points = np.asarray(points, dtype=np.float32)
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def region_of_faces(faces: np.ndarray, vertex_region: np.ndarray) -> np.ndarray:
    """Region of each triangle: the region two of its corners share, else its first corner's."""
    corners = vertex_region[faces]
    return np.where(corners[:, 1] == corners[:, 2], corners[:, 1], corners[:, 0]).astype(np.int32)


def _new_mesh(name: str, vertices: np.ndarray, faces: np.ndarray) -> bpy.types.Mesh:
    """A triangle mesh built with foreach_set (fast for tens of thousands of faces)."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.attributes["position"].data.foreach_set("vector", to_blender(vertices).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, faces.shape[1], dtype=np.int32))
    mesh.update()
    mesh.validate()
    return mesh


def set_positions(mesh: bpy.types.Mesh, vertices: np.ndarray) -> None:
    """Move ``mesh``'s vertices to ``vertices`` (V, 3), motion coordinates, and refresh its bounding box.

    Writing the ``position`` attribute (fast, one copy) does not invalidate the mesh's cached bounds, and
    Workbench culls an object whose (stale) bounding box lies outside the view: a body walking away from
    where it was first rendered vanished from the frame. Setting one vertex through ``MeshVertex.co`` tags
    the positions as changed, which drops that cache (``mesh.vertices.foreach_set("co")`` does too, ~100x slower).
    """
    mesh.attributes["position"].data.foreach_set("vector", to_blender(vertices).ravel())
    if len(mesh.vertices):
        first = mesh.vertices[0]
        first.co = first.co
    mesh.update()


def _material(name: str, colour: np.ndarray, roughness: float = 0.55) -> bpy.types.Material:
    """A material with ``colour`` (linear RGB) both for Workbench and for the Principled BSDF."""
    material = bpy.data.materials.new(name)
    rgba = (*(float(c) for c in colour[:3]), 1.0)
    material.diffuse_color = rgba
    material.roughness = roughness
    bsdf = material.node_tree.nodes.get("Principled BSDF")
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = rgba
        bsdf.inputs["Roughness"].default_value = roughness
    return material


def _unit_quad(name: str, lift: float, material: bpy.types.Material) -> bpy.types.Object:
    """A square [0, 1] x [0, 1] in motion X, Z at height ``lift``, UV-mapped u = x, v = z; scaled per use."""
    corners = np.array([[0, lift, 0], [1, lift, 0], [1, lift, 1], [0, lift, 1]], np.float32)
    mesh = _new_mesh(name, corners, np.array([[0, 3, 2, 1]], np.int32))
    uv = mesh.uv_layers.new(name="uv")
    loop_vertices = np.array([loop.vertex_index for loop in mesh.loops])
    uv.data.foreach_set("uv", corners[loop_vertices][:, [0, 2]].ravel())
    mesh.materials.append(material)
    return bpy.data.objects.new(name, mesh)


def _texture_material(name: str) -> tuple[bpy.types.Material, bpy.types.ShaderNodeTexImage]:
    """A rough material whose colour comes from an image texture node (Workbench shows it in TEXTURE mode)."""
    material = _material(name, floor.srgb_to_linear(floor.FLOOR_SRGB), roughness=0.9)
    nodes = material.node_tree.nodes
    texture = nodes.new("ShaderNodeTexImage")
    texture.interpolation = "Linear"
    texture.extension = "EXTEND"
    material.node_tree.links.new(texture.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    nodes.active = texture
    return material, texture


def _set_image(node: bpy.types.ShaderNodeTexImage, name: str, rgba: np.ndarray) -> bpy.types.Image:
    """Put ``rgba`` (H, W, 4, sRGB, row 0 at v = 0) in the node's image, replacing it when the size changed."""
    image = node.image
    if image is None or tuple(image.size) != (rgba.shape[1], rgba.shape[0]):
        if image is not None:
            bpy.data.images.remove(image)
        image = bpy.data.images.new(name, rgba.shape[1], rgba.shape[0])
        node.image = image
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image


def limit_blas_threads() -> None:
    """Use one BLAS thread: idle OpenBLAS threads spin for a while after every call, taking the rasteriser's cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional; without it numpy keeps its default threads
        log.debug("threadpoolctl is not installed: BLAS keeps its default thread count")
        return
    threadpool_limits(1, user_api="blas")


def _enable_cycles_gpu() -> str | None:
    """Switch Cycles to the first GPU backend with a device; its name, or None when there is none."""
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
        try:
            prefs.compute_device_type = backend
        except TypeError:
            continue
        prefs.get_devices()
        if any(d.type != "CPU" for d in prefs.devices):
            for device in prefs.devices:
                device.use = device.type != "CPU"
            return backend
    return None


class Studio:
    """A headless studio: neutral background, gridded floor, soft light, a follow camera and the avatars."""

    def __init__(self, settings: StudioSettings | None = None) -> None:
        self.settings = settings or StudioSettings()
        blender_engine = check_engine(self.settings.engine, self.settings.force_engine)
        limit_blas_threads()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        self.scene = bpy.context.scene
        ram = RAM_TMP if RAM_TMP.is_dir() and os.access(RAM_TMP, os.W_OK) else None
        self._tmp = tempfile.TemporaryDirectory(prefix="lavimo-render-", dir=ram)
        self.avatars: dict[Any, bpy.types.Object] = {}
        self.current: Any = None
        self._setup_render(blender_engine)
        self._setup_world()
        self._setup_floor()
        self._setup_camera()
        self._setup_lights()

    # scene construction -------------------------------------------------------------------------------------

    def _setup_render(self, blender_engine: str) -> None:
        render = self.scene.render
        render.engine = blender_engine
        render.resolution_x = render.resolution_y = self.settings.resolution
        render.resolution_percentage = 100
        render.film_transparent = False
        render.dither_intensity = 0.0  # no noise: deterministic, clean flat areas
        image = render.image_settings  # scene-linear half float, no colour management: encoded to sRGB by numpy
        image.file_format, image.color_mode = "OPEN_EXR", "RGB"
        image.color_depth, image.exr_codec = "16", "NONE"
        render.filepath = str(Path(self._tmp.name) / "frame.exr")
        if self.settings.threads > 0:
            render.threads_mode = "FIXED"
            render.threads = self.settings.threads
        self.scene.view_settings.view_transform = "Standard"  # what readback.encode_srgb reproduces
        if blender_engine == "BLENDER_WORKBENCH":
            self._setup_workbench()
        elif blender_engine == "CYCLES":
            self._setup_cycles()
        else:
            self.scene.eevee.taa_render_samples = self.settings.samples

    def _setup_workbench(self) -> None:
        display = self.scene.display
        display.render_aa = self.settings.workbench_aa
        shading = display.shading
        shading.light = "STUDIO"
        shading.studio_light = STUDIO_LIGHT
        shading.color_type = "TEXTURE"  # material colours; the floor's grid texture
        shading.show_specular_highlight = False  # costs a third of the frame on software OpenGL, barely visible
        shading.show_cavity = False
        shading.show_object_outline = False
        shading.show_shadows = False  # hard stencil shadows: slow on CPU; the contact patch is softer

    def _setup_cycles(self) -> None:
        cycles = self.scene.cycles
        cycles.samples = self.settings.samples
        cycles.use_denoising = True
        cycles.seed = 0
        cycles.max_bounces = 4
        cycles.device = "CPU"
        if self.settings.device.upper() == "GPU":
            backend = _enable_cycles_gpu()
            if backend:
                cycles.device = "GPU"
                log.info("Cycles renders on the GPU (%s)", backend)
            else:
                log.warning("Cycles: no GPU device found, rendering on the CPU")

    def _setup_world(self) -> None:
        world = bpy.data.worlds.new("studio")
        world.color = BACKGROUND_LINEAR
        background = world.node_tree.nodes.get("Background")
        if background is not None:
            background.inputs["Color"].default_value = (*BACKGROUND_LINEAR, 1.0)
            background.inputs["Strength"].default_value = 0.6
        self.scene.world = world

    def _setup_floor(self) -> None:
        half = FLOOR_SIZE_M / 2
        corners = np.array([[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]], np.float32)
        mesh = _new_mesh("floor", corners, np.array([[0, 3, 2, 1]], np.int32))
        mesh.materials.append(_material("floor", floor.srgb_to_linear(floor.FLOOR_SRGB), roughness=0.9))
        plain = bpy.data.objects.new("floor", mesh)
        grid_material, self._grid_node = _texture_material("grid")
        self.grid = _unit_quad("grid", GRID_LIFT_M, grid_material)
        shadow_material, self._shadow_node = _texture_material("contact_shadow")
        self.shadow = _unit_quad("contact_shadow", SHADOW_LIFT_M, shadow_material)
        for obj in (plain, self.grid, self.shadow):
            obj.hide_viewport = True  # as the avatars: nothing for the viewport depsgraph to update around renders
            self.scene.collection.objects.link(obj)
        self.shadow.hide_render = True
        self._grids: OrderedDict[tuple, bpy.types.Image] = OrderedDict()  # layout key -> grid image, oldest first
        self.layout: floor.GridLayout | None = None
        self.set_floor(np.zeros((1, 2)))

    def set_floor(self, path_xz: np.ndarray) -> None:
        """Lay the grid around a clip's (smoothed) root path ``path_xz`` (T, 2); once per clip (textures are reused)."""
        self.lay_grid(floor.grid_layout(path_xz))

    def has_grid(self, layout: floor.GridLayout) -> bool:
        """Whether the grid texture of ``layout`` is loaded already (then laying it costs nothing)."""
        return layout.key in self._grids

    def lay_grid(self, layout: floor.GridLayout, texture: np.ndarray | None = None) -> None:
        """Lay the grid of ``layout``; ``texture``: its ``floor.grid_texture``, if computed already (elsewhere)."""
        if self.layout == layout:
            return
        self.layout = layout
        image = self._grids.pop(layout.key, None)
        if image is None:
            while len(self._grids) >= GRID_CACHE:
                bpy.data.images.remove(self._grids.popitem(last=False)[1])
            rows, cols = layout.shape
            image = bpy.data.images.new("grid", cols, rows)
            image.pixels.foreach_set((floor.grid_texture(layout) if texture is None else texture).ravel())
            image.update()
        self._grids[layout.key] = image
        self._grid_node.image = image
        self._place(self.grid, layout.origin, layout.size)

    @staticmethod
    def _place(obj: bpy.types.Object, origin_xz: np.ndarray, size_xz: np.ndarray) -> None:
        """Move and scale a unit floor quad to cover [origin, origin + size] in X and Z."""
        obj.location = Vector(to_blender(np.array([origin_xz[0], 0.0, origin_xz[1]])).tolist())
        obj.scale = (float(size_xz[0]), float(size_xz[1]), 1.0)

    def _setup_camera(self) -> None:
        camera = bpy.data.cameras.new("camera")
        camera.sensor_fit = "HORIZONTAL"
        camera.clip_start, camera.clip_end = 0.05, 500.0
        self.camera = bpy.data.objects.new("camera", camera)
        self.scene.collection.objects.link(self.camera)
        self.scene.camera = self.camera
        self.rig = bpy.data.objects.new("light_rig", None)  # lights follow the look-at target
        self.scene.collection.objects.link(self.rig)

    def _setup_lights(self) -> None:
        if self.scene.render.engine == "BLENDER_WORKBENCH":
            return
        # offsets in motion coordinates relative to the target, camera roughly at +Z (front)
        for name, offset, power, size in (
            ("key", (2.5, 3.5, 3.0), 130.0, 3.0),
            ("fill", (-3.5, 1.5, 2.0), 45.0, 4.0),
            ("rim", (0.5, 3.0, -3.5), 75.0, 2.0),
        ):
            light = bpy.data.lights.new(name, "AREA")
            light.energy, light.size = power, size
            obj = bpy.data.objects.new(name, light)
            obj.parent = self.rig
            obj.location = Vector(to_blender(np.array(offset)).tolist())
            direction = -obj.location
            obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
            self.scene.collection.objects.link(obj)

    # avatars and per-frame state ----------------------------------------------------------------------------

    def add_avatar(self, key: Any, avatar: Any) -> None:
        """Create the mesh of ``avatar`` (rest pose, per-region materials) once; hidden until shown."""
        if key in self.avatars:
            return
        faces = np.asarray(avatar.faces, dtype=np.int32)
        mesh = _new_mesh(f"avatar_{key}", np.asarray(avatar.vertices), faces)
        for index, colour in enumerate(np.asarray(avatar.region_colors, dtype=np.float32)):
            mesh.materials.append(_material(f"avatar_{key}_region_{index}", colour))
        mesh.polygons.foreach_set("material_index", region_of_faces(faces, np.asarray(avatar.vertex_region)))
        mesh.shade_smooth()
        obj = bpy.data.objects.new(f"avatar_{key}", mesh)
        obj.hide_render = True
        obj.hide_viewport = True  # renders ignore it; the viewport depsgraph (updated around each render) skips it
        self.scene.collection.objects.link(obj)
        self.avatars[key] = obj

    def show(self, key: Any) -> None:
        """Make avatar ``key`` the only visible one."""
        for other, obj in self.avatars.items():
            obj.hide_render = other != key
        self.current = key

    @property
    def draws_shadow(self) -> bool:
        """Whether frames get the contact-shadow patch (Workbench with shadows on)."""
        return self.settings.shadows and self.scene.render.engine == "BLENDER_WORKBENCH"

    def shadow_maker(self) -> Callable[[np.ndarray], floor.ShadowPatch]:
        """vertices (V, 3) -> contact shadow of a body so posed on the current floor.

        numpy only and bound to the floor of the moment: it may run in another thread meanwhile.
        """
        return partial(floor.body_shadow, self.layout)

    def pose(self, vertices: np.ndarray, shadow: floor.ShadowPatch | None = None) -> None:
        """Move the shown avatar's vertices to ``vertices`` (V, 3), motion coordinates; ``shadow``: its precomputed
        contact shadow (computed here when needed and not given)."""
        set_positions(self.avatars[self.current].data, vertices)
        if self.draws_shadow:
            self.lay_shadow(shadow if shadow is not None else self.shadow_maker()(vertices))

    def lay_shadow(self, patch: floor.ShadowPatch) -> None:
        """Show a contact-shadow patch (Workbench only): it darkens the grid softly under the body."""
        _set_image(self._shadow_node, "contact_shadow", patch.texture)
        self._place(self.shadow, patch.origin, np.full(2, patch.size))
        self.shadow.hide_render = False

    def aim(self, location: np.ndarray, target: np.ndarray, fov_deg: float) -> None:
        """Place the camera at ``location`` looking at ``target`` (motion coordinates)."""
        eye, look = Vector(to_blender(location).tolist()), Vector(to_blender(target).tolist())
        self.camera.data.angle = float(np.radians(fov_deg))
        self.camera.location = eye
        self.camera.rotation_euler = (look - eye).to_track_quat("-Z", "Y").to_euler()
        self.rig.location = look

    def render(self) -> np.ndarray:
        """Render the current frame; (H, W, 3) uint8 sRGB (FXAA applied when enabled)."""
        return self.finish(self.render_raw())

    def render_raw(self) -> np.ndarray:
        """Render the current frame as Blender outputs it: (H, 3, W) float16 scene-linear R, G, B planes."""
        bpy.ops.render.render(write_still=True)
        return read_exr_planes(self.scene.render.filepath)

    def finish(self, planes: np.ndarray) -> np.ndarray:
        """The final (H, W, 3) uint8 sRGB frame of a raw render (FXAA when enabled); numpy only, thread-safe."""
        image = encode_srgb(planes)
        return fxaa(image) if self.settings.fxaa else image

    def close(self) -> None:
        """Remove the temporary folder."""
        self._tmp.cleanup()
