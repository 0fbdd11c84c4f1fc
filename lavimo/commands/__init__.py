"""Thin CLI sub-command groups: each module has `register(parser)` and only wires library calls."""
