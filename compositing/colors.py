"""Colour values: the named colours, the other spellings users type, and the one parser of ``#RRGGBB``."""

from __future__ import annotations

import re

# Colours by name, RGB. red/blue/green/white are the ID-photo presets; key green is what
# OBS's chroma key expects by default.
NAMED_COLORS_RGB = {
    "red": (208, 0, 0),
    "blue": (0, 143, 213),
    "green": (0, 134, 134),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "key green": (0, 255, 0),
}
KEY_COLOR_BGR = (0, 255, 0)
#: Other spellings users type, mapped to the names above (after lower-casing and turning
#: runs of spaces, '-' and '_' into one space).
NAME_ALIASES = {"grey": "gray", "keygreen": "key green", "key": "transparent", "alpha": "transparent",
                "original": "none", "off": "none"}
#: What ``--background`` accepts besides a file, for help texts and error messages.
BACKGROUND_CHOICES = "blur (or blur:SIGMA), none, transparent, " + ", ".join(NAMED_COLORS_RGB) + ", #RRGGBB"


def canonical_name(value: str) -> str:
    """``"Key_Green "`` -> ``"key green"``: the one spelling of a built-in name."""
    text = re.sub(r"[\s_-]+", " ", (value or "").strip().lower())
    return NAME_ALIASES.get(text, text)


def parse_color(value: str) -> tuple[int, int, int] | None:
    """Return BGR for a colour name or ``#RRGGBB``; ``None`` if ``value`` is not a colour."""
    text = canonical_name(value)
    if text in NAMED_COLORS_RGB:
        r, g, b = NAMED_COLORS_RGB[text]
        return (b, g, r)
    match = re.fullmatch(r"#([0-9a-f]{6})", text)
    if match:
        r, g, b = (int(match.group(1)[i:i + 2], 16) for i in (0, 2, 4))
        return (b, g, r)
    return None
