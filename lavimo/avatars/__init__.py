"""Avatars: 13 body presets (anny by default, SMPL optional), rigging data and retargeting."""
