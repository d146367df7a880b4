"""Checks on the paths users give: names too long for the system, two names of one file."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def too_long(path) -> bool:
    """Is ``path`` (a str, or None) a name this system's files cannot have (a part over 255 bytes,
    the whole over 4095 on Linux)?"""
    if not isinstance(path, str) or not path or "://" in path:  # (a stream's URL is no file name)
        return False
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ENAMETOOLONG
    except ValueError:  # a NUL byte: refused as a name elsewhere
        return False
    return False


def shortened(text: str, keep: int = 80) -> str:
    """``text`` cut to about ``keep`` characters (its start and end) for a one-line message."""
    return text if len(text) <= keep else f"{text[:keep // 2]}…{text[-keep // 2:]} ({len(text)} characters)"


def same_file(a: str, b: str) -> bool:
    """Do ``a`` and ``b`` name one file (the same path, or links to one file)?"""
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(a).exists() and Path(b).exists()
                                                          and Path(a).samefile(b))
    except OSError:
        return False
