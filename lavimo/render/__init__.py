"""Headless rendering with Blender: the only package that imports bpy, run in its own process (never with torch).

Modules that import bpy: scene, clip, shard, sheets. The rest (engines, framing, floor, antialias, video,
bench) are bpy-free; importing this package imports nothing.
"""
