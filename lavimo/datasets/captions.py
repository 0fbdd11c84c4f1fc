"""Natural-language captions for labelled clips (Bandai-Namco content x style), deterministic per clip.

Each caption is a template filled from phrase banks: a subject ("a person", "someone", ...), a verb
phrase of the content ("walks forward", "strolls ahead") and a style phrase (an adverbial "happily",
an adjective "a cheerful person" or a manner "looking cheerful"). The choice is seeded by the clip id,
so a rerun gives the same captions while clips of the same label get different wordings.
"""

from __future__ import annotations

import hashlib
import os
import random
import unicodedata
from dataclasses import dataclass

from lavimo.io import LavimoInputError

SUBJECTS: tuple[str, ...] = ("a person", "someone", "a figure", "the person", "an individual", "a character")
NOUNS: tuple[str, ...] = ("person", "figure", "individual", "character")

# content label -> verb phrases (third person singular); left/right words are swapped for mirrored clips
CONTENT_PHRASES: dict[str, tuple[str, ...]] = {
    # Bandai-Namco dataset-1
    "walk": ("walks forward", "strolls ahead", "takes steps forward", "walks straight ahead", "walks along"),
    "run": ("runs forward", "jogs ahead", "runs straight ahead", "runs along at a steady pace"),
    "dash": ("dashes forward", "sprints ahead", "runs forward at full speed", "bolts forward"),
    "walk-back": ("walks backward", "steps backwards", "walks in reverse", "backs away step by step"),
    "walk-left": ("walks to the left", "sidesteps to the left", "moves sideways to the left", "steps leftward"),
    "walk-right": ("walks to the right", "sidesteps to the right", "moves sideways to the right", "steps rightward"),
    "bow": ("bows", "bows forward at the waist", "takes a bow", "bends forward in a bow"),
    "bye": ("waves goodbye", "waves a hand to say bye", "raises a hand and waves farewell", "says goodbye with a wave"),
    "guide": (
        "gestures to show the way",
        "guides someone with an arm gesture",
        "points the way with an open hand",
        "directs someone with a sweep of the arm",
    ),
    "byebye": (
        "waves both arms goodbye",
        "waves bye-bye eagerly",
        "waves farewell with big arm movements",
        "says bye-bye with a broad wave",
    ),
    "respond": (
        "responds with a gesture",
        "answers with a nod and a gesture",
        "reacts in reply to someone",
        "acknowledges someone with a gesture",
    ),
    "call": ("calls someone over", "beckons someone to come", "waves someone over", "calls out and beckons"),
    "punch": ("throws a punch", "punches forward", "strikes with a fist", "punches the air"),
    "kick": ("kicks", "throws a kick", "kicks forward with one leg", "delivers a kick"),
    "slash": ("slashes with a sword", "swings a blade", "makes a slashing strike", "cuts through the air with a sword"),
    "dance-long": ("dances", "performs a long dance", "dances for a while", "moves through a dance routine"),
    "dance-short": ("dances briefly", "does a short dance", "performs a quick dance", "dances a few moves"),
    # Bandai-Namco dataset-2
    "walk-turn-left": (
        "walks and turns left",
        "walks forward then turns to the left",
        "makes a left turn while walking",
        "walks and curves to the left",
    ),
    "walk-turn-right": (
        "walks and turns right",
        "walks forward then turns to the right",
        "makes a right turn while walking",
        "walks and curves to the right",
    ),
    "wave-both-hands": ("waves both hands", "waves with both hands", "waves both arms overhead", "waves two hands"),
    "wave-left-hand": ("waves the left hand", "waves with the left hand", "raises the left hand and waves"),
    "wave-right-hand": ("waves the right hand", "waves with the right hand", "raises the right hand and waves"),
    "raise-up-both-hands": (
        "raises both hands",
        "lifts both hands up",
        "puts both arms up in the air",
        "raises both arms overhead",
    ),
    "raise-up-left-hand": ("raises the left hand", "lifts the left hand up", "puts the left arm up in the air"),
    "raise-up-right-hand": ("raises the right hand", "lifts the right hand up", "puts the right arm up in the air"),
}


@dataclass(frozen=True)
class StylePhrases:
    """Ways to say a style: after the verb ("happily"), before the noun ("cheerful"), as a manner clause."""

    adverbs: tuple[str, ...]
    adjectives: tuple[str, ...]
    manners: tuple[str, ...]


_NORMAL = StylePhrases(
    adverbs=("", "normally", "in an ordinary way", "naturally"),
    adjectives=("", "ordinary"),
    manners=("in a neutral manner", "without any particular style"),
)
_MASCULINE = StylePhrases(
    adverbs=("in a masculine way", "with a manly swagger", "in a macho manner"),
    adjectives=("masculine", "macho"),
    manners=("with broad, masculine movements", "looking manly"),
)
_OLD = StylePhrases(
    adverbs=("like an old person", "slowly like an elderly person", "in a frail, aged way"),
    adjectives=("old", "elderly", "frail old"),
    manners=("with a hunched, aged posture", "moving like a senior"),
)
_TIRED = StylePhrases(
    adverbs=("wearily", "in a tired way", "as if exhausted"),
    adjectives=("tired", "exhausted", "weary"),
    manners=("with drooping shoulders", "looking worn out"),
)
_YOUNG = StylePhrases(
    adverbs=("in a youthful way", "with youthful energy", "in a lively, young manner"),
    adjectives=("young", "youthful"),
    manners=("full of youthful vigor", "moving like a teenager"),
)

STYLE_PHRASES: dict[str, StylePhrases] = {
    "normal": _NORMAL,
    "happy": StylePhrases(
        adverbs=("happily", "in a cheerful mood", "joyfully"),
        adjectives=("happy", "cheerful", "joyful"),
        manners=("looking cheerful", "with a joyful bounce"),
    ),
    "sad": StylePhrases(
        adverbs=("sadly", "in a gloomy mood", "sorrowfully"),
        adjectives=("sad", "downcast", "gloomy"),
        manners=("with a dejected air", "looking unhappy"),
    ),
    "angry": StylePhrases(
        adverbs=("angrily", "in a furious mood", "with irritation"),
        adjectives=("angry", "furious", "irritated"),
        manners=("looking annoyed", "with aggressive, tense movements"),
    ),
    "proud": StylePhrases(
        adverbs=("proudly", "with a proud bearing", "confidently, chest out"),
        adjectives=("proud", "self-assured"),
        manners=("with the chest puffed out", "looking full of pride"),
    ),
    "not-confident": StylePhrases(
        adverbs=("timidly", "hesitantly", "without confidence"),
        adjectives=("timid", "insecure", "hesitant"),
        manners=("looking unsure", "with a shy, hesitant posture"),
    ),
    "masculinity": _MASCULINE,
    "masculine": _MASCULINE,
    "feminine": StylePhrases(
        adverbs=("in a feminine way", "gracefully and femininely", "in a ladylike manner"),
        adjectives=("feminine", "graceful"),
        manners=("with delicate, feminine movements", "looking elegant"),
    ),
    "childish": StylePhrases(
        adverbs=("childishly", "like a small child", "in a playful, childlike way"),
        adjectives=("childish", "childlike", "playful"),
        manners=("with the bouncy movements of a kid", "acting like a child"),
    ),
    "old": _OLD,
    "elderly": _OLD,
    "tired": _TIRED,
    "exhausted": _TIRED,
    "active": StylePhrases(
        adverbs=("energetically", "actively", "with lots of energy"),
        adjectives=("energetic", "lively", "active"),
        manners=("full of energy", "with vigorous movements"),
    ),
    "musical": StylePhrases(
        adverbs=("theatrically, like in a musical", "in a musical style", "rhythmically, like a stage performer"),
        adjectives=("theatrical", "showy"),
        manners=("with exaggerated stage gestures", "as if performing in a musical"),
    ),
    "giant": StylePhrases(
        adverbs=("like a giant", "heavily, like a huge giant", "with heavy, lumbering movements"),
        adjectives=("giant", "huge", "lumbering"),
        manners=("moving like a heavy giant", "with big, ponderous motions"),
    ),
    "chimpira": StylePhrases(
        adverbs=("like a thug", "in a delinquent, swaggering way", "like a street punk"),
        adjectives=("thuggish", "swaggering", "punkish"),
        manners=("with a thuggish swagger", "acting tough like a hoodlum"),
    ),
    "youthful": _YOUNG,
}

TEMPLATES: tuple[str, ...] = ("adverb", "adjective", "manner")


def phrases_digest() -> str:
    """Short hash of the phrase banks and templates (part of the demo shards' fingerprint)."""
    banks = repr((SUBJECTS, NOUNS, sorted(CONTENT_PHRASES.items()), sorted(STYLE_PHRASES.items()), TEMPLATES))
    return hashlib.sha256(banks.encode()).hexdigest()[:16]


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _render(template: str, subject: str, noun: str, verb: str, style_phrase: str) -> str:
    if template == "adverb":
        return f"{subject} {verb} {style_phrase}".strip()
    if template == "adjective":
        words = f"{style_phrase} {noun}".strip()
        return f"{_article(words)} {words} {verb}"
    return f"{subject} {verb}, {style_phrase}"


def candidate_captions(content: str, style: str) -> list[tuple[str, str, str]]:
    """Every (caption, verb phrase, template) for a label pair, sorted; raises KeyError for an unknown label."""
    verbs = CONTENT_PHRASES[content]
    phrases = STYLE_PHRASES[style]
    out: set[tuple[str, str, str]] = set()
    for verb in verbs:
        for subject in SUBJECTS:
            out.update((_render("adverb", subject, "", verb, a), verb, "adverb") for a in phrases.adverbs)
            out.update((_render("manner", subject, "", verb, m), verb, "manner") for m in phrases.manners)
        for noun in NOUNS:
            out.update((_render("adjective", "", noun, verb, a), verb, "adjective") for a in phrases.adjectives)
    return sorted(out)


def captions_for(clip_key: str, content: str, style: str, n: int = 3, seed: int = 0) -> list[str]:
    """``n`` distinct captions for a clip, deterministic in (seed, clip_key); varied in verb and template."""
    candidates = candidate_captions(content, style)
    digest = hashlib.sha256(f"{seed}:{clip_key}".encode()).digest()
    random.Random(int.from_bytes(digest[:8], "little")).shuffle(candidates)
    chosen: list[str] = []
    used_verbs: set[str] = set()
    used_templates: set[str] = set()
    for strict in (2, 1, 0):  # first new verb and new template, then new verb, then anything new
        for caption, verb, template in candidates:
            if len(chosen) == n:
                return chosen
            fresh_verb = verb not in used_verbs or strict == 0
            fresh_template = template not in used_templates or strict < 2 or len(used_templates) == len(TEMPLATES)
            if caption not in chosen and fresh_verb and fresh_template:
                chosen.append(caption)
                used_verbs.add(verb)
                used_templates.add(template)
    return chosen


def strip_format_characters(text: str) -> str:
    """``text`` without Unicode format characters (category Cf: zero-width spaces and joiners, byte-order marks,
    bidirectional marks, soft hyphens): invisible, they would make an empty caption look like text."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def clean_caption(text: object, source: str | os.PathLike[str], where: str) -> str:
    """A caption read from a dataset, as stored: format characters removed, ends stripped. A value that is not text,
    holds a NUL character (binary data) or is empty once cleaned raises :class:`LavimoInputError` (``where`` says
    which line or annotation of ``source``)."""
    if not isinstance(text, str):
        raise LavimoInputError(source, f"{where}: the caption is not text ({type(text).__name__})")
    if "\x00" in text:
        raise LavimoInputError(source, f"{where}: the caption holds a NUL character (binary data, not text)")
    cleaned = strip_format_characters(text).strip()
    if not cleaned:
        raise LavimoInputError(source, f"{where}: empty caption (nothing but spaces or invisible characters)")
    return cleaned
