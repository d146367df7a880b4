"""Files written atomically: a temporary file beside the target, renamed into place.

Unlike :func:`tempfile.mkstemp` (always mode 0600), the temporary file is
created with mode 0666 less the user's umask, so what lands (photos, downloaded
models) has the permissions any other file the user saves would have.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def open_temp_beside(target: str | os.PathLike) -> tuple[int, Path]:
    """``(fd, path)`` of a new, exclusively created hidden file in ``target``'s folder."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    for _ in range(100):
        tmp = folder / f".{target.name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder}")


def write_atomic(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file; ``target`` is never left partial."""
    fd, tmp = open_temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
