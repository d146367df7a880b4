"""The background kinds (colour, picture, video, blur, transparent, none) and the one parser of user values.

Each :class:`Background` renders BGR uint8 at the frame's size; ``make_background``
turns what a user typed (``blur``, ``white``, ``#224466``, ``key green``, a file
or a name in ``backgrounds/``) into one.
"""

from __future__ import annotations

import difflib
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from matting.motion import same_scene, thumbnail

from .colors import BACKGROUND_CHOICES, KEY_COLOR_BGR, canonical_name, parse_color
from .errors import BackgroundError
from .media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, opencv_path, read_image, sane_fps, to_bgr8

FIT_MODES = ("cover", "contain", "stretch")
#: The widest blur (sigma in pixels at 720p) a user value may ask for.
MAX_BLUR = 500.0
#: Largest background image side kept in memory; bigger pictures are shrunk once on load.
MAX_BACKGROUND_SIDE = 3840

def fit_image(image: np.ndarray, frame_hw: Sequence[int], mode: str = "cover") -> np.ndarray:
    """Resize a BGR picture to ``frame_hw``: cover (centre crop), contain (letterbox) or stretch."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    ih, iw = image.shape[:2]
    if mode == "stretch" or (ih, iw) == (h, w):
        interp = cv2.INTER_AREA if ih * iw > h * w else cv2.INTER_LINEAR
        return cv2.resize(image, (w, h), interpolation=interp) if (ih, iw) != (h, w) else image.copy()
    if mode not in FIT_MODES:
        raise BackgroundError(f"unknown fit mode {mode!r}: use one of {', '.join(FIT_MODES)}")
    scale = max(h / ih, w / iw) if mode == "cover" else min(h / ih, w / iw)
    sw, sh = max(1, round(iw * scale)), max(1, round(ih * scale))
    if mode == "cover":
        sw, sh = max(sw, w), max(sh, h)
    else:
        sw, sh = min(sw, w), min(sh, h)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (sw, sh), interpolation=interp)
    if mode == "cover":
        y0, x0 = (sh - h) // 2, (sw - w) // 2
        return np.ascontiguousarray(scaled[y0:y0 + h, x0:x0 + w])
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    out[y0:y0 + sh, x0:x0 + sw] = scaled
    return out



class Background(ABC):
    """Something to put behind the person. ``render`` returns BGR uint8 at the frame's size.

    ``render(frame, alpha, now)`` gets the frame (BGR uint8), the person's alpha (float32 in
    [0, 1], at any size: the matte as the engine made it; None where no background needs it)
    and the time in seconds.

    A returned picture is never changed afterwards (a new picture is a new array): the
    compositor keeps work derived from it while the same array comes back.
    """

    name: str = "background"
    #: True when the background is the original frame (composite is the frame itself)
    passthrough: bool = False
    #: True when the output should carry transparency (RGBA in photos, key colour live)
    transparent: bool = False

    @abstractmethod
    def render(self, frame: np.ndarray, alpha: np.ndarray, now: float) -> np.ndarray:
        ...

    def close(self) -> None:
        pass


class ColorBackground(Background):
    def __init__(self, bgr: Sequence[int], name: str | None = None):
        self.bgr = tuple(int(c) for c in bgr)
        self.name = name or "#%02x%02x%02x" % (self.bgr[2], self.bgr[1], self.bgr[0])
        self._cache: np.ndarray | None = None

    def render(self, frame, alpha, now):
        if self._cache is None or self._cache.shape != frame.shape:
            self._cache = np.empty_like(frame)
            self._cache[:] = self.bgr
        return self._cache


class ImageBackground(Background):
    def __init__(self, source: str | os.PathLike | np.ndarray, fit: str = "cover", name: str | None = None):
        if fit not in FIT_MODES:
            raise BackgroundError(f"unknown fit mode {fit!r}: use one of {', '.join(FIT_MODES)}")
        self.path: Path | None = None  # the file it came from, if any
        if isinstance(source, np.ndarray):
            self.image = to_bgr8(source)
            self.name = name or "image"
        else:
            image, opacity = read_image(source, max_side=MAX_BACKGROUND_SIDE, with_opacity=True)
            if opacity is not None:  # over black where it is see-through (not the colours stored there)
                image = cv2.multiply(image, cv2.merge([opacity] * 3), dtype=cv2.CV_8U)
            self.image = image
            self.name = name or Path(source).stem
            self.path = Path(source)
        self.fit = fit
        self._cache: tuple[tuple, np.ndarray] | None = None

    def render(self, frame, alpha, now):
        key = frame.shape[:2]
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, fit_image(self.image, key, self.fit))
        return self._cache[1]


#: A background video whose decoded frames take at most this many bytes is kept in memory once
#: played through (a 1-frame "video", a short loop: rewinding a file costs 5-50 ms a time, and
#: some cannot seek and are opened again each time round). 32 MB: 11 frames of 720p.
MEMORY_CLIP_BYTES = 32 * 2**20


class VideoBackground(Background):
    """A looping video that advances with the time it is rendered at (``now``: the wall clock live,
    the file's own time when converting), whatever the output rate; a short one plays from memory
    after its first time through (:data:`MEMORY_CLIP_BYTES`)."""

    def __init__(self, path: str | os.PathLike, fit: str = "cover", name: str | None = None):
        path = Path(path)
        if not path.exists():
            raise BackgroundError(f"file not found: {path}")
        if path.stat().st_size == 0:
            raise BackgroundError(f"video file is empty: {path}")
        self.path, self.fit, self.name = path, fit, name or path.stem
        self._cap = cv2.VideoCapture(opencv_path(path, BackgroundError))
        ok, first = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok or first is None:
            self._cap.release()
            raise BackgroundError(f"not a readable video: {path}")
        self.fps = sane_fps(self._cap.get(cv2.CAP_PROP_FPS), 25.0)
        self._index = 0  # index of the frame in self._frame
        self._frame = to_bgr8(first)
        self._t0: float | None = None
        self._fitted: tuple[tuple, int, np.ndarray] | None = None
        self._frames: list[np.ndarray] | None = None  # the whole clip, once known to be short
        self._fitted_all: dict[tuple, list] = {}      # from memory: each frame fitted, by output size

    def frame_index_at(self, now: float) -> int:
        if self._t0 is None:
            self._t0 = now
        return int((now - self._t0) * self.fps + 1e-6)  # (0.6 - 0.5) * 10 is 0.999...: frame 1, not 0

    def _advance_to(self, target: int) -> None:
        if self._frames is not None:
            self._index = target % len(self._frames)
            self._frame = self._frames[self._index]
            return
        if target < self._index:  # only after a loop wrapped around: rewind
            self._rewind()
        while self._index < target:
            if not self._cap.grab():
                # End of file: the clip's length is now known, wrap the clock around it.
                length = self._index + 1
                self._t0 = (self._t0 or 0.0) + (target // length) * length / self.fps
                target %= length
                if length * self._frame.nbytes <= MEMORY_CLIP_BYTES and self._keep_in_memory(length):
                    self._advance_to(target)
                    return
                self._rewind()
                continue
            self._index += 1
            if self._index == target:
                ok, frame = self._cap.retrieve()
                if ok and frame is not None:
                    self._frame = to_bgr8(frame)

    def _keep_in_memory(self, length: int) -> bool:
        """Decode the whole (short) clip once more, into memory, to play it from there; False
        (playing on from the file) if it no longer reads the same."""
        self._cap.release()
        self._cap, frames = cv2.VideoCapture(opencv_path(self.path, BackgroundError)), []
        while len(frames) < length and (got := self._cap.read())[0] and got[1] is not None:
            frames.append(to_bgr8(got[1]))
        if len(frames) == length:
            self._cap.release()
            self._frames = frames
        return self._frames is not None

    def _rewind(self) -> None:
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ok, frame = self._cap.read()
        if not ok:  # some containers do not seek: reopen
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            ok, frame = self._cap.read()
        if ok and frame is not None:
            self._frame = to_bgr8(frame)
        self._index = 0

    def render(self, frame, alpha, now):
        self._advance_to(self.frame_index_at(now))
        key = frame.shape[:2]
        if self._frames is not None and len(self._frames) * frame.nbytes <= MEMORY_CLIP_BYTES:
            fitted = self._fitted_all.get(key)  # from memory, and fitted to the output within the limit too:
            if fitted is None:                  # each frame fitted once (a low-resolution clip of many
                self._fitted_all = {key: (fitted := [None] * len(self._frames))}  # frames is fitted as shown)
            if fitted[self._index] is None:
                fitted[self._index] = fit_image(self._frame, key, self.fit)
            return fitted[self._index]
        self._fitted_all = {}
        if self._fitted is None or self._fitted[0] != key or self._fitted[1] != self._index:
            self._fitted = (key, self._index, fit_image(self._frame, key, self.fit))
        return self._fitted[2]

    def close(self):
        self._cap.release()


class BlurBackground(Background):
    """The real room, blurred, with the person cut out before blurring.

    Blurring the whole frame smears the person's colours into the background
    around the outline (a halo). Instead this is a normalised convolution: blur
    ``frame·w`` and ``w`` with w = (1 − α)², divide, so only background pixels
    contribute. It runs on an image 4-8 times smaller (a blur this wide loses
    nothing there) and is upsampled.

    A still scene is blurred once: while the same alpha array comes back and
    the room, at the working size, has not changed beyond sensor noise since
    the picture was made, the last blurred room is returned (the blur would
    average that noise away anyway). This is most of a still scene's cost.
    """


    def __init__(self, strength: float = 12.0, name: str | None = None):
        if strength <= 0:
            raise BackgroundError(f"blur strength must be positive, got {strength}")
        self.strength = float(strength)  # Gaussian sigma in pixels of a 720p frame
        self.name = name or "blur"
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (alpha, thumbnail, blurred)

    #: short side of the working image: a blur this wide loses nothing at that scale
    WORK_SHORT_SIDE = 180
    #: ... and wider blurs work on a smaller image still, down to this sigma in working pixels (a
    #: Gaussian this wide has nothing left near the working image's Nyquist rate: no aliasing)
    MIN_WORK_SIGMA = 1.5

    def render(self, frame, alpha, now):
        h, w = frame.shape[:2]
        sigma_full = self.strength * min(h, w) / 720.0
        factor = max(1, round(min(h, w) / self.WORK_SHORT_SIDE), int(sigma_full // self.MIN_WORK_SIGMA))
        sh, sw = max(1, h // factor), max(1, w // factor)
        # the same alpha on the same scene (matting.motion.same_scene): the blurred room is ready
        thumb = thumbnail(frame, sw, sh, shared=True)
        last = self._last
        if last is not None and last[0] is alpha and last[2].shape == frame.shape and same_scene(thumb, last[1]):
            return last[2]
        small = thumb.astype(np.float32)
        a_small = thumbnail(alpha, sw, sh)  # the matte at any size: area-averaged to the working size
        # Grow the person slightly before weighting, so the outline's own colours
        # (half-transparent edge pixels) do not count as background either.
        weight = cv2.dilate(a_small, np.ones((3, 3), np.uint8))
        cv2.subtract(1.0, weight, dst=weight)
        cv2.multiply(weight, weight, dst=weight)
        sigma = max(0.5, sigma_full / factor)
        # room·w and w as one image (4 channels for BGR): each blur and resize below runs once for both
        channels = small.shape[2]
        weighted = cv2.merge([small * weight[:, :, None], weight])
        near = cv2.GaussianBlur(weighted, (0, 0), sigma)
        # Where the person covers the whole neighbourhood there is no background
        # to average: fill from a 4x wider search (done at a quarter of the size;
        # it is hidden behind the person anyway).
        tw, th = max(1, sw // 4), max(1, sh // 4)
        quarter = _resize(weighted, (tw, th), cv2.INTER_AREA)
        wide = _resize(cv2.GaussianBlur(quarter, (0, 0), sigma), (sw, sh), cv2.INTER_LINEAR)
        den, wide_den = near[:, :, channels:], wide[:, :, channels:]
        near_room = near[:, :, :channels] / np.maximum(den, 1e-6)
        bg = wide[:, :, :channels] / np.maximum(wide_den, 1e-6)
        # bg = mix·near + (1 − mix)·wide, mix = clip(den / 0.05, 0, 1)
        bg += np.clip(den * 20.0, 0.0, 1.0) * (near_room - bg)
        fallback = wide_den[:, :, 0] < 1e-4  # the person fills everything: a plain blur, as wide
        if fallback.any():
            plain = cv2.resize(cv2.GaussianBlur(cv2.resize(small, (tw, th), interpolation=cv2.INTER_AREA),
                                                (0, 0), sigma), (sw, sh), interpolation=cv2.INTER_LINEAR)
            bg[fallback] = plain[fallback]
        bg = cv2.convertScaleAbs(bg)  # rounded to nearest and saturated to 0..255, as uint8
        out = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR)
        self._last = (alpha, thumb, out)
        return out


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """cv2.resize for any number of channels (it takes at most 4 at once: BGRA and its weight are 5)."""
    if image.shape[2] <= 4:
        return cv2.resize(image, size, interpolation=interpolation)
    return np.dstack([cv2.resize(image[:, :, i:i + 4], size, interpolation=interpolation)
                      for i in range(0, image.shape[2], 4)])


class TransparentBackground(Background):
    """RGBA in photo mode; for live sinks a key colour (pure green) OBS can key out."""

    transparent = True

    def __init__(self, key_bgr: Sequence[int] = KEY_COLOR_BGR, name: str = "transparent"):
        self.key = ColorBackground(key_bgr)
        self.name = name

    def render(self, frame, alpha, now):
        return self.key.render(frame, alpha, now)


class NoBackground(Background):
    """Pass-through: the original frame, untouched."""

    passthrough = True
    name = "none"

    def render(self, frame, alpha, now):
        return frame


def make_background(value: str, fit: str = "cover", blur_strength: float = 12.0,
                    search_dirs: Sequence[str | os.PathLike] = ()) -> Background:
    """Build a background from a user value.

    ``none``, ``blur`` (or ``blur:SIGMA``), ``transparent``, a colour name
    (:data:`compositing.colors.NAMED_COLORS_RGB`, any case, ``key green`` also as ``keygreen``) or
    ``#RRGGBB``, or the path of a picture or video (also looked up by name in
    ``search_dirs``).
    """
    text = (value or "").strip()
    name = canonical_name(text)
    if not text:
        raise BackgroundError("empty background value")
    if name == "none":
        return NoBackground()
    if name == "blur" or name.startswith("blur:"):
        strength = blur_strength
        if ":" in name:
            try:
                strength = float(text.split(":", 1)[1])  # the text as typed: "blur:-5" is not 5
            except ValueError:
                raise BackgroundError(f"bad blur strength in {value!r}: use blur or blur:SIGMA") from None
            if not 0 < strength <= MAX_BLUR:  # also refuses nan and inf
                raise BackgroundError(f"blur strength must be a number in (0, {MAX_BLUR:g}], got {value!r}")
        return BlurBackground(strength)
    if name == "transparent":
        return TransparentBackground()
    color = parse_color(text)
    if color is not None:
        return ColorBackground(color, name=name)
    path = find_background_file(text, search_dirs)
    if path is None:
        if text.startswith("#") or re.fullmatch(r"[a-z ]+", name):
            raise BackgroundError(f"unknown background {value!r}: use {BACKGROUND_CHOICES}, "
                                  f"or a picture/video file{_names_hint(text, search_dirs)}")
        raise BackgroundError(f"background file not found: {value}{_names_hint(text, search_dirs)}")
    return load_background_file(path, fit=fit)


def _names_hint(text: str, search_dirs: Sequence[str | os.PathLike]) -> str:
    """`` (did you mean 03_soft_office?)`` or the names in the backgrounds folder, for a name
    that matches none of them; nothing for a path."""
    if "/" in text or "\\" in text or not search_dirs:
        return ""
    names = sorted({c.stem for d in map(Path, search_dirs) if d.is_dir() for c in d.iterdir()
                    if c.is_file() and c.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS})
    close = difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (in {Path(search_dirs[0])}: {', '.join(names[:6])}{', ...' if len(names) > 6 else ''})" if names else ""


def find_background_file(text: str, search_dirs: Sequence[str | os.PathLike] = ()) -> Path | None:
    """A path as given, else a file in ``search_dirs`` named ``text`` (with or without extension)."""
    path = Path(text).expanduser()
    if path.exists():
        return path
    for folder in search_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for candidate in sorted(folder.iterdir()):
            if candidate.is_file() and path.name in (candidate.stem, candidate.name):
                return candidate
    return None


def load_background_file(path: str | os.PathLike, fit: str = "cover") -> Background:
    path = Path(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return VideoBackground(path, fit=fit)
    return ImageBackground(path, fit=fit)
