"""Files written atomically: a temporary file beside the target, renamed (or linked) into place.

Unlike :func:`tempfile.mkstemp` (always mode 0600), the temporary file is
created with mode 0666 less the user's umask, so what lands (photos, downloaded
models) has the permissions any other file the user saves would have.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path


def open_temp_beside(target: str | os.PathLike, suffix: str = "") -> tuple[int, Path]:
    """``(fd, path)`` of a new, exclusively created hidden file in ``target``'s folder, its name
    ending in ``suffix`` (for writers that choose the format by the name, such as ``.mp4``)."""
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    for _ in range(100):
        tmp = folder / f".{target.name}.{secrets.token_hex(4)}.part{suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder}")


def write_atomic(target: str | os.PathLike, data: bytes, replace: bool = True) -> None:
    """Write ``data`` to ``target`` through a temporary file; ``target`` is never left partial.

    ``replace=False``: FileExistsError if ``target`` exists when the data lands, even when it was
    made after the caller checked (another run, the user saving a file there meanwhile): the file
    is linked into place, which never replaces (on a file system without hard links: checked, then
    renamed)."""
    fd, tmp = open_temp_beside(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if replace:
            os.replace(tmp, target)
        else:
            place_new(tmp, Path(target))
    finally:
        if tmp.exists():
            tmp.unlink()


def place_new(tmp: Path, target: Path) -> None:
    """Give the finished file ``tmp`` the name ``target`` unless something has it by now
    (FileExistsError): never replaces, even what was made after the caller checked."""
    try:
        os.link(tmp, target)  # FileExistsError if the name is taken
        return
    except FileExistsError:
        pass
    except OSError:  # no hard links here (FAT and exFAT drives, some shares: EPERM, EINVAL, EACCES, ...)
        if not os.path.lexists(target):
            os.replace(tmp, target)
            return
    what = "a folder" if target.is_dir() else "a link to nothing" if not target.exists() else "a file"
    raise FileExistsError(errno.EEXIST, f"there is {what} of that name now (made while this ran): not replaced",
                          str(target))
