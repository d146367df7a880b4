"""The background cycle the hotkeys step through: built-ins, then ``backgrounds/``, hot-reloaded.

Built-in choices come first (blur, then colours, key green, none), then every
picture and video in ``backgrounds/`` whose header can be read. Files are
loaded lazily on selection; one that still fails is skipped with a warning and
never ends the run. At most :data:`MAX_LOADED_FILES` folder files stay loaded (the
most recently shown): a big folder stepped through does not fill the memory.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .backgrounds import (Background, BlurBackground, ColorBackground, NoBackground, canonical_name,
                          load_background_file, parse_color)
from .errors import MediaError
from .media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, looks_readable

log = logging.getLogger(__name__)

MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
#: Colours in the cycle, after blur; "key green" is the chroma-key green OBS keys out.
BUILTIN_COLORS = ("white", "gray", "blue", "key green")
#: Folder backgrounds kept loaded, the shown one included (a 12-MP photo holds about 35 MB, a video
#: its decoder and threads); stepping back to one dropped since loads it again.
MAX_LOADED_FILES = 3


@dataclass
class Entry:
    name: str
    factory: Callable[[], Background]
    path: Path | None = None
    failed: bool = False
    key: tuple | None = None  # a folder file's (name, mtime + size) when listed: a loaded one is kept while it holds


class BackgroundLibrary:
    def __init__(self, folder: str | os.PathLike | None, fit: str = "cover", blur_strength: float = 12.0,
                 initial: Background | None = None, rescan_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.folder = Path(folder) if folder else None
        self.fit, self.blur_strength = fit, blur_strength
        self.rescan_interval = rescan_interval
        self.clock = clock
        self._signature: tuple = ()
        self._last_scan = -1e9
        self._readable: dict[tuple[str, float], bool] = {}  # (name, mtime+size) -> header check result
        self._recheck = False  # a file was still being written at the last scan: look again
        self._loaded: dict[str, Background] = {}
        self._loaded_keys: dict[str, tuple | None] = {}  # the file version each loaded background came from
        self._kept: Entry | None = None  # the selected background after its file left the folder
        self._custom: Entry | None = None
        self._custom_file: Path | None = None  # the file the custom background came from, if any
        if initial is not None:
            self._set_custom(initial)
        self.entries: list[Entry] = []
        self.index = 0
        self.rescan(force=True)
        if self._custom is not None:
            self.select_name(self._custom.name)

    # ------------------------------------------------------------------
    def _builtins(self) -> list[Entry]:
        builtins = [Entry("blur", lambda: BlurBackground(self.blur_strength))]
        builtins += [Entry(name, lambda n=name: ColorBackground(parse_color(n), name=n))
                     for name in BUILTIN_COLORS]
        builtins.append(Entry("none", NoBackground))
        return builtins

    def _scan_folder(self) -> list[Path]:
        if self.folder is None or not self.folder.is_dir():
            return []
        try:
            return sorted(p for p in self.folder.iterdir()
                          if p.is_file() and p.suffix.lower() in MEDIA_EXTENSIONS and not p.name.startswith("."))
        except OSError as exc:
            log.warning("cannot read %s: %s", self.folder, exc)
            return []

    def rescan(self, force: bool = False) -> bool:
        """Re-list the folder (at most every ``rescan_interval`` s); True when the list changed."""
        now = self.clock()
        if not force and now - self._last_scan < self.rescan_interval:
            return False
        self._last_scan = now
        files = self._scan_folder()
        signature = tuple((p.name, _mtime(p)) for p in files)
        if not force and signature == self._signature and not self._recheck:
            return False
        self._recheck = False
        self._signature = signature
        current = self.entries[self.index].name if self.entries else None
        entries = self._builtins()
        names = {e.name for e in entries}  # taken so far (a set: a big folder is not compared pair by pair)
        custom = self._custom.name if self._custom is not None else None
        readable = {}
        for path, key in zip(files, signature):
            # each file is checked once per version, so a change in the folder costs one check
            # (this runs in the render loop), not one per file
            ok = self._readable[key] if key in self._readable else looks_readable(path)
            if not ok and _being_written(path):
                self._recheck = True  # probably still being copied in: no verdict yet
                continue
            if not ok and key not in self._readable:
                log.warning("skipping background %s: not a picture or video that can be read", path.name)
            readable[key] = ok
            if not ok:
                continue
            # A file named like the background given outside the folder (other/03_soft_office.jpg)
            # is listed by its file name: it must not take that one's place
            def taken(name: str, path: Path = path) -> bool:
                return (name in names or (name == custom and not _same_file(path, self._custom_file))
                        or means_builtin(name))

            name, n = (path.stem if not taken(path.stem) else path.name), 2
            while taken(name):  # (white.jpg beside ~/Pictures/white.jpg, which goes by white.jpg)
                name, n = f"{path.stem}-{n}{path.suffix}", n + 1
            names.add(name)
            entries.append(Entry(name, lambda p=path: load_background_file(p, fit=self.fit), path=path, key=key))
        self._readable = readable
        if self._custom is not None and all(e.name != self._custom.name for e in entries):
            entries.append(self._custom)  # last: the keys 1-9 keep picking what the README lists
        self._keep_current(current, entries)
        # Forget loaded files that changed or vanished, so edits show up; the others stay loaded
        # (a change elsewhere in the folder must not decode a big picture again, or restart a video).
        by_name = {e.name: e for e in entries}
        for name in list(self._loaded):
            entry = by_name.get(name)
            if entry is None or (entry.path is not None and self._loaded_keys.get(name) != entry.key):
                self._loaded.pop(name).close()
                self._loaded_keys.pop(name, None)
        before = [e.name for e in self.entries]
        self.entries = entries
        names = [e.name for e in entries]
        self.index = names.index(current) if current in names else names.index("blur")
        if not force:  # (a file only growing, a recording made into the folder: no line each second)
            log.log(logging.INFO if names != before else logging.DEBUG, "backgrounds reloaded: %d available",
                    len(entries))
        return True

    def _keep_current(self, current: str | None, entries: list[Entry]) -> None:
        """The selected background's file left the folder (deleted, renamed, the folder moved): it
        stays on screen, last in the cycle, until another is chosen (never the room behind the
        user, as ``none`` would show); one never loaded gives way to blur (see :meth:`rescan`)."""
        if self._kept is not None and self._kept.name != current:
            self._kept = None  # another one was chosen since
        if current is not None and all(e.name != current for e in entries):
            background = self._loaded.get(current)
            if background is not None and (self._kept is None or self._kept.name != current):
                log.warning("background %s is no longer in %s: kept until another is chosen", current, self.folder)
                self._kept = Entry(current, lambda: background)
        if self._kept is not None and all(e.name != self._kept.name for e in entries):
            entries.append(self._kept)

    # ------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def current(self) -> Background:
        """The selected background, loading it now; a broken file is skipped."""
        for _ in range(len(self.entries)):
            entry = self.entries[self.index]
            background = self._loaded.get(entry.name)
            if background is not None:
                return background
            try:
                background = entry.factory()
            except (MediaError, OSError, ValueError) as exc:
                log.warning("skipping background %s: %s", entry.name, exc)
                entry.failed = True
                if entry.key is not None:  # this version of the file: not listed again by a rescan
                    self._readable[entry.key] = False
                del self.entries[self.index]
                self.index %= len(self.entries)
                if self.entries[self.index].name == "none":  # skipping must never show the room
                    self.index = self.names.index("blur")
                continue
            self._loaded[entry.name], self._loaded_keys[entry.name] = background, entry.key
            self._drop_least_recent()
            return background
        return NoBackground()

    def _drop_least_recent(self) -> None:
        """Close the folder files shown longest ago beyond :data:`MAX_LOADED_FILES` (``_loaded`` is
        in the order they were last shown; the custom and kept backgrounds cannot be loaded again)."""
        files = {e.name for e in self.entries if e.path is not None}
        files.discard(self.current_name)
        loaded = [name for name in self._loaded if name in files]
        for name in loaded[:max(0, len(loaded) - (MAX_LOADED_FILES - 1))]:
            self._loaded.pop(name).close()
            self._loaded_keys.pop(name, None)

    @property
    def current_name(self) -> str:
        return self.entries[self.index].name

    def shown(self) -> Background | None:
        """The selected background if it is loaded already, else None: a look that loads nothing
        and changes nothing (the live status asks every second)."""
        return self._loaded.get(self.current_name) if self.entries else None

    def step(self, delta: int) -> Background:
        self.index = (self.index + delta) % len(self.entries)
        name = self.current_name
        if name in self._loaded:  # the most recently shown last (see _drop_least_recent)
            self._loaded[name] = self._loaded.pop(name)
        background = self.current()
        log.info("background: %s", background.name)
        return background

    def select(self, index: int) -> Background | None:
        if 0 <= index < len(self.entries):
            self.index = index
            return self.step(0)
        return None

    def select_name(self, name: str) -> bool:
        for i, e in enumerate(self.entries):
            if e.name == name:
                self.index = i
                return True
        return False

    def choose(self, value: str) -> str | None:
        """Select ``value``: a name as listed, a built-in's other spelling (``grey``, ``Key-Green``)
        or a colour (a name or ``#RRGGBB``, kept outside the cycle); live, ``transparent`` is the
        key green a call app or OBS keys out (unless a picture is named so: ``key.jpg``). The name
        selected, or None, changing nothing, when ``value`` is none of these."""
        name = value if value in self.names else canonical_name(value)
        if name == "transparent" and name not in self.names:
            name = "key green"
        if name in self.names:
            self.select_name(name)
            self.step(0)
        else:
            color = parse_color(value)
            if color is None:
                return None
            self.use(ColorBackground(color, name=value.lower()))
        return self.current_name

    def use(self, background: Background) -> None:
        """Select a background that is not in the cycle (a colour picked in the web panel); it stays
        last in the cycle until another one replaces it (the keys 1-9 keep their backgrounds)."""
        old = self._custom
        self._set_custom(background)
        if old is not None and old.name != self._custom.name:
            dropped = self._loaded.pop(old.name, None)
            if dropped is not None and dropped is not background:
                dropped.close()
        self.rescan(force=True)
        self.select_name(self._custom.name)
        log.info("background: %s", self._custom.name)

    def _set_custom(self, background: Background) -> None:
        """The background outside the cycle; a file named like a built-in (``~/Pictures/white.jpg``)
        goes by its file name, so it is not taken for the built-in."""
        file = getattr(background, "path", None)
        name = file.name if file is not None and (background.name in {e.name for e in self._builtins()}
                                                  or means_builtin(background.name)) else background.name
        self._custom, self._custom_file = Entry(name, lambda: background), file
        self._loaded[name] = background

    def set_blur_strength(self, strength: float) -> None:
        """Blur sigma (pixels at 720p) from now on."""
        self.blur_strength = float(strength)
        dropped = self._loaded.pop("blur", None)
        if dropped is not None:
            dropped.close()

    def close(self):
        for background in self._loaded.values():
            background.close()
        self._loaded.clear()


def means_builtin(name: str) -> bool:
    """Would ``name`` be read as a built-in if no file had it: a colour (``red``), another spelling
    of one in the cycle (``Grey``, ``KeyGreen``) or ``transparent``? A file named so (``red.jpg``)
    goes by its file name, so asking for ``red`` gives the colour, as ``--background red`` does.
    (``key.jpg`` and ``alpha.png``, the other words for transparent, are those pictures.)"""
    text = canonical_name(name)
    return (parse_color(name) is not None or text.replace(" ", "") in _BUILTIN_WORDS
            or name.strip().lower() == "transparent")


_BUILTIN_WORDS = {"blur", "none", *(color.replace(" ", "") for color in BUILTIN_COLORS)}


def _being_written(path: Path, quiet_s: float = 2.0) -> bool:
    """Modified in the last ``quiet_s`` seconds: probably still being copied in (checked again later)."""
    try:
        return time.time() - path.stat().st_mtime < quiet_s
    except OSError:
        return False


def _same_file(path: Path, other: Path | None) -> bool:
    try:
        return other is not None and path.samefile(other)
    except OSError:
        return False


def _mtime(path: Path) -> float:
    try:
        st = path.stat()
        return st.st_mtime + st.st_size * 1e-12
    except OSError:
        return 0.0
