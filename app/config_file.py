"""Config files (``--config my.toml`` or ``.json``): read, keys normalised, mistakes named in one line.

Paths in the file are taken as on the command line: relative to the folder the
command runs in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .arguments import parse_size
from .errors import UsageError
from .paths import shortened, too_long

#: The largest config file read (a settings file is a few lines).
MAX_CONFIG_BYTES = 1_000_000
#: Config-file keys that are the negated command-line flags (``no_window = true`` -> ``window = false``).
NEGATED_KEYS = {"no_window": "window", "no_mirror": "mirror", "no_hud": "hud", "no_reconnect": "reconnect"}


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (JSON allows repeats and keeps the last; TOML
    refuses them, and so does this)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{key!r} is given twice")
        seen[key] = value
    return seen


def read_config_file(path: str, known: set[str]) -> dict[str, Any]:
    """The settings in a TOML or JSON file, keys normalised to the names in ``known`` (the
    settings' fields; types are checked later)."""
    file = Path(path)
    if too_long(path):
        raise UsageError(f"config file: file name too long for this system: {shortened(path)}")
    if file.is_dir():
        raise UsageError(f"config file {path} is a folder")
    if not file.is_file():
        raise UsageError(f"config file not found: {path}")
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise UsageError(f"config file {path} is {file.stat().st_size / 1e6:.0f} MB: a settings file is a few "
                         f"lines (at most {MAX_CONFIG_BYTES // 1000} kB)")
    try:
        text = file.read_text(encoding="utf-8-sig")  # (a byte-order mark, as Notepad saves files, is fine)
        if file.suffix.lower() == ".json":
            data = json.loads(text, object_pairs_hook=_no_repeats)
        else:
            import tomllib

            data = tomllib.loads(text)
    except Exception as exc:
        raise UsageError(f"cannot parse config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of settings")
    values: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # each setting as the file spells it (inference-size, no_window)
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in NEGATED_KEYS:
            if not isinstance(value, bool):
                raise UsageError(f"{key} = {value!r} in {path} is not valid: expected true or false")
            name, value = NEGATED_KEYS[name], not value
        if name not in known:
            raise UsageError(f"unknown setting {key!r} in {path}; valid keys: "
                             + ", ".join(sorted(known | set(NEGATED_KEYS))))
        if name in values:  # inference-size and inference_size, or no_window and window
            raise UsageError(f"{key} and {spelled[name]} in {path} both set {name.replace('_', '-')}: "
                             f"keep one of them")
        spelled[name] = str(key)
        values[name] = value
    if isinstance(values.get("size"), str):
        try:
            values["size"] = parse_size(values["size"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"size in {path}: {exc}") from None
    elif isinstance(values.get("size"), list):
        values["size"] = tuple(values["size"])
    if isinstance(values.get("camera"), int) and not isinstance(values["camera"], bool):
        values["camera"] = str(values["camera"])  # camera = 1 means webcam 1
    return values
