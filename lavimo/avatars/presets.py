"""The 13 avatar presets: body shape (anny phenotypes or SMPL betas) and appearance (data, not code).

Anny phenotypes are in [0, 1]: gender 0 = male, 1 = female; age 1/3 = child, 2/3 = young adult,
1 = old; muscle, weight, height and proportions 0.5 = average. SMPL betas are the first 10 shape
coefficients; ``smpl_gender`` picks the model file (falling back to the neutral one when missing).
Colours are sRGB hex strings (converted to linear RGB when the avatar files are written).
Clothing: ``sleeves`` none | short | long, ``legwear`` shorts | long, ``hair_style`` none | short | long.
"""

from __future__ import annotations

from typing import Any

# Material regions of every avatar file, in this order (a region may have no vertex).
REGION_NAMES: tuple[str, ...] = ("skin", "hair", "shirt", "trousers", "shoes", "eye_white", "iris", "mouth")

# Colours of the regions that do not vary between presets.
FIXED_COLORS: dict[str, str] = {"eye_white": "#e8e4dc", "iris": "#2a1c12", "mouth": "#7a2e2e"}

PRESETS: tuple[dict[str, Any], ...] = (
    {
        "name": "tall_man_white_shirt",
        "anny": {"gender": 0.05, "age": 0.7, "muscle": 0.6, "weight": 0.5, "height": 0.5, "proportions": 0.5},
        "smpl_gender": "male",
        "betas": [1.6, 0.2, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#e9c3a6", "hair": "#3b2416", "shirt": "#f2f2f2", "trousers": "#1f2d5c", "shoes": "#151515"},
        "sleeves": "long",
        "legwear": "long",
        "hair_style": "short",
    },
    {
        "name": "woman_red_top",
        "anny": {"gender": 0.95, "age": 0.66, "muscle": 0.3, "weight": 0.1, "height": 0.36, "proportions": 0.5},
        "smpl_gender": "female",
        "betas": [-0.4, -0.6, 0.3, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#c68c63", "hair": "#101010", "shirt": "#c8102e", "trousers": "#4a6fa5", "shoes": "#f4f4f4"},
        "sleeves": "short",
        "legwear": "long",
        "hair_style": "long",
    },
    {
        "name": "heavy_older_man",
        "anny": {"gender": 0.1, "age": 0.93, "muscle": 0.3, "weight": 0.92, "height": 0.39, "proportions": 0.5},
        "smpl_gender": "male",
        "betas": [0.3, 2.2, 0.5, -0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#f1cfb8", "hair": "#9a9a9a", "shirt": "#2e7d32", "trousers": "#cbb994", "shoes": "#5d3a1a"},
        "sleeves": "long",
        "legwear": "long",
        "hair_style": "short",
    },
    {
        "name": "athletic_woman_yellow",
        "anny": {"gender": 0.9, "age": 0.68, "muscle": 0.85, "weight": 0.35, "height": 0.44, "proportions": 0.5},
        "smpl_gender": "female",
        "betas": [0.6, -1.2, -0.4, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#6b3f26", "hair": "#0c0a09", "shirt": "#f2c318", "trousers": "#222222", "shoes": "#d62728"},
        "sleeves": "none",
        "legwear": "shorts",
        "hair_style": "short",
    },
    {
        "name": "slim_young_man_orange",
        "anny": {"gender": 0.15, "age": 0.6, "muscle": 0.35, "weight": 0.1, "height": 0.48, "proportions": 0.5},
        "smpl_gender": "male",
        "betas": [0.5, -1.8, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#d8a47f", "hair": "#d9b25f", "shirt": "#ef7d18", "trousers": "#a89a6a", "shoes": "#1f5fbf"},
        "sleeves": "short",
        "legwear": "shorts",
        "hair_style": "short",
    },
    {
        "name": "short_woman_purple",
        "anny": {"gender": 1.0, "age": 0.75, "muscle": 0.5, "weight": 0.65, "height": 0.27, "proportions": 0.5},
        "smpl_gender": "female",
        "betas": [-1.8, 0.8, 0.2, -0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#f3d2bd", "hair": "#8c3b1e", "shirt": "#6a3d9a", "trousers": "#707070", "shoes": "#0f0f0f"},
        "sleeves": "long",
        "legwear": "long",
        "hair_style": "long",
    },
    {
        "name": "muscular_man_black_tank",
        "anny": {"gender": 0.0, "age": 0.7, "muscle": 1.0, "weight": 0.6, "height": 0.43, "proportions": 0.5},
        "smpl_gender": "male",
        "betas": [1.0, 0.6, -1.0, 1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#4a2c1d", "hair": "#000000", "shirt": "#141414", "trousers": "#556b2f", "shoes": "#8c8c8c"},
        "sleeves": "none",
        "legwear": "long",
        "hair_style": "none",
    },
    {
        "name": "older_woman_teal",
        "anny": {"gender": 0.85, "age": 0.97, "muscle": 0.3, "weight": 0.72, "height": 0.32, "proportions": 0.5},
        "smpl_gender": "female",
        "betas": [-1.0, 1.4, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#eac0ae", "hair": "#ece8e1", "shirt": "#00838f", "trousers": "#4e342e", "shoes": "#7b1f3a"},
        "sleeves": "long",
        "legwear": "long",
        "hair_style": "long",
    },
    {
        "name": "teen_boy_sky_blue",
        "anny": {"gender": 0.2, "age": 0.53, "muscle": 0.45, "weight": 0.4, "height": 0.42, "proportions": 0.5},
        "smpl_gender": "male",
        "betas": [-0.8, -0.8, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#b98560", "hair": "#1a1410", "shirt": "#7ec8ee", "trousers": "#8b1a1a", "shoes": "#fafafa"},
        "sleeves": "short",
        "legwear": "shorts",
        "hair_style": "short",
    },
    {
        "name": "neutral_lime_uncommon_proportions",
        "anny": {"gender": 0.5, "age": 0.72, "muscle": 0.5, "weight": 0.5, "height": 0.4, "proportions": 1.0},
        "smpl_gender": "neutral",
        "betas": [0.0, 0.0, 1.5, -1.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#caa07a", "hair": "#c2185b", "shirt": "#9ccc3c", "trousers": "#101010", "shoes": "#f5d20a"},
        "sleeves": "long",
        "legwear": "long",
        "hair_style": "short",
    },
    {
        "name": "tall_woman_white_tee",
        "anny": {"gender": 0.8, "age": 0.65, "muscle": 0.55, "weight": 0.25, "height": 0.52, "proportions": 0.5},
        "smpl_gender": "female",
        "betas": [2.0, -0.8, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#5a3522", "hair": "#2e1b10", "shirt": "#fdfdfd", "trousers": "#6b7a2a", "shoes": "#202020"},
        "sleeves": "short",
        "legwear": "long",
        "hair_style": "long",
    },
    {
        "name": "stocky_man_red",
        "anny": {"gender": 0.05, "age": 0.82, "muscle": 0.7, "weight": 0.82, "height": 0.28, "proportions": 0.5},
        "smpl_gender": "male",
        "betas": [-1.2, 1.6, -0.6, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#e0b48a", "hair": "#0a0a0a", "shirt": "#e53935", "trousers": "#263859", "shoes": "#d9d9d9"},
        "sleeves": "long",
        "legwear": "shorts",
        "hair_style": "short",
    },
    {
        "name": "sporty_woman_pink",
        "anny": {"gender": 0.95, "age": 0.6, "muscle": 0.7, "weight": 0.85, "height": 0.66, "proportions": 0.2},
        "smpl_gender": "female",
        "betas": [0.2, 0.2, -0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        "colors": {"skin": "#a86b47", "hair": "#e6c36a", "shirt": "#1c2a6b", "trousers": "#f06292", "shoes": "#00a39a"},
        "sleeves": "none",
        "legwear": "long",
        "hair_style": "long",
    },
)

NUM_PRESETS = len(PRESETS)
