"""Picture in, finished ID photo or print sheet out: matte, face, framing, background, encoding.

One :class:`IdPhotoMaker` serves the command line, the REST API and the web
UI alike. Models are created on first use (so a server starts at once and a
missing model is reported with the request that needed it) and at most
``jobs`` pictures are processed at a time (one by default: parallel uploads
cannot exhaust a 2-core machine; the others wait their turn).

Frames are BGR uint8 (OpenCV order) in and out; BGRA for transparent results.
"""

from __future__ import annotations

import logging
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from compositing import Compositor, make_background, parse_color
from compositing.backgrounds import ImageBackground, canonical_name
from compositing.errors import BackgroundError, MediaError
from compositing.media import shown_over_grey, split_alpha
from compositing.refine import estimate_foreground
from matting import NO_PERSON, MattingEngine, alpha_to_numpy, finds_person
from matting.errors import DownloadError, ModelUnavailable, WeightsError

from .errors import IdPhotoError
from .framing import Framing, apply_framing, draw_guides, plan_framing
from .orientation import check_upright
from .output import content_type, encode
from .sheet import make_sheet, plan_sheet
from .sizes import PhotoSize, parse_paper, parse_size

log = logging.getLogger(__name__)

FORMATS = ("png", "jpg")
DPI_RANGE = (72, 1200)
#: The largest photo made (a 2×2 in photo at 1200 DPI is 5.8 megapixels).
MAX_PHOTO_PIXELS = 20_000_000
#: What ``background`` accepts here (never a file path: requests must not name server files).
BACKGROUND_WORDS = "transparent, blur, white, blue, red, green, gray, black or #RRGGBB"
#: Said once, when the face model cannot be had (each photo's own warnings then say how it was framed).
NO_FACE_MODEL = "no face model available, so ID photos are framed from the person's outline alone"


@dataclass
class PhotoRequest:
    """What the user asked for; validated by :meth:`checked`."""

    background: str = "transparent"   # colour name, #RRGGBB, transparent or blur
    size: str | None = None           # preset id, WxHmm, WxHin or WxHpx; None: the whole picture, no framing
    dpi: float = 300.0
    format: str | None = None         # png | jpg; None: png when transparent, else jpg
    max_kb: float | None = None

    def checked(self) -> "PhotoRequest":
        fmt = (self.format or "").strip().lower().lstrip(".") or None
        fmt = "jpg" if fmt == "jpeg" else fmt
        if fmt is not None and fmt not in FORMATS:
            raise IdPhotoError(f"format must be png or jpg, got {self.format!r}")
        if not (DPI_RANGE[0] <= float(self.dpi) <= DPI_RANGE[1]):
            raise IdPhotoError(f"dpi must be between {DPI_RANGE[0]} and {DPI_RANGE[1]}, got {self.dpi:g}")
        if self.max_kb is not None and not (0 < float(self.max_kb) <= 100_000):
            raise IdPhotoError(f"max_kb must be a positive number of kilobytes, got {self.max_kb:g}")
        transparent = canonical_name(self.background or "") in ("transparent", "")
        if transparent and fmt == "jpg":
            raise IdPhotoError("JPEG cannot hold transparency: choose a background colour (such as white; "
                               "the API's default is transparent) or PNG")
        if self.size:
            width, height = parse_size(self.size, float(self.dpi)).pixels(float(self.dpi))
            if width * height > MAX_PHOTO_PIXELS:
                raise IdPhotoError(f"a {width}×{height} px photo is too large: at most "
                                   f"{MAX_PHOTO_PIXELS / 1e6:.0f} megapixels (lower the DPI or the size)")
        return PhotoRequest(self.background or "transparent", self.size or None, float(self.dpi),
                            fmt or ("png" if transparent else "jpg"), self.max_kb)


@dataclass
class PhotoResult:
    image: np.ndarray                 # BGR, or BGRA when transparent
    data: bytes                       # the encoded file
    format: str
    dpi: float
    size: PhotoSize | None = None
    framing: Framing | None = None
    warnings: list[str] = field(default_factory=list)
    count: int = 1                    # sheets: copies placed
    left_out: list[str] = field(default_factory=list)  # sheets: the pictures not on it (refused, unreadable, no room)

    @property
    def content_type(self) -> str:
        return content_type(self.format)

    @property
    def extension(self) -> str:
        return "." + self.format

    def preview(self, guides: bool = True) -> np.ndarray:
        """The result with the head-height and eye-line guides drawn (for showing, never saved)."""
        if not guides or self.framing is None or self.size is None:
            return self.image
        return draw_guides(self.image, self.framing, self.size, self.dpi)


@dataclass
class _Worker:
    """One set of models: an engine, its compositor and a face detector, used by one picture at a time."""

    engine: MattingEngine
    compositor: Compositor
    faces: object | None


class Busy(RuntimeError):
    """Too many pictures are already waiting for their turn."""


class IdPhotoMaker:
    #: Requests allowed to wait for a turn; more are refused (Busy) instead of piling up.
    MAX_WAITING = 32

    def __init__(self, engine_factory: Callable[[], MattingEngine],
                 face_factory: Callable[[], object | None] | None = None,
                 compositor_factory: Callable[[MattingEngine], Compositor] | None = None,
                 jobs: int = 1, blur_strength: float = 12.0, face_required: bool = False):
        self._engine_factory, self._face_factory = engine_factory, face_factory
        self.face_required = face_required  # the user named the face model: it failing is an error, not a warning
        self._compositor_factory = compositor_factory or (lambda engine: Compositor(refine=engine.default_refine,
                                                                                     decontaminate=True))
        self.blur_strength = blur_strength
        self.jobs = max(1, jobs)
        # Each job has its own models: engines, compositors and face models keep per-call buffers.
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._setup = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.jobs)
        self.waiting = 0                  # requests waiting for their turn (shown by the UI)
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------
    def _new_worker(self) -> _Worker:
        engine = self._engine_factory()
        faces = None
        if self._face_factory is not None:
            try:
                faces = self._face_factory()
            except (ModelUnavailable, WeightsError, DownloadError) as exc:  # offline, no runtime for the file
                if self.face_required:
                    raise
                log.warning("%s (%s)", NO_FACE_MODEL, exc)
        return _Worker(engine, self._compositor_factory(engine), faces)

    @contextmanager
    def turn(self) -> Iterator[_Worker]:
        """Wait for one of the ``jobs`` turns and hold its models (created on first use)."""
        with self._count_lock:
            if self.waiting >= self.MAX_WAITING:
                raise Busy(f"{self.waiting} pictures are already waiting: try again in a minute")
            self.waiting += 1
        try:
            self._slots.acquire()
        finally:
            with self._count_lock:
                self.waiting -= 1
        try:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                with self._setup:
                    worker = self._new_worker()
                    self._workers.append(worker)
            try:
                yield worker
            finally:
                self._idle.put(worker)
        finally:
            self._slots.release()

    # ------------------------------------------------------------------
    def photo(self, image: np.ndarray | Callable[[], np.ndarray], request: PhotoRequest,
              background_image: np.ndarray | None = None) -> PhotoResult:
        """One ID photo (``request.size`` set) or a full-size cut-out / composite (no size).

        ``image``: BGR uint8 (BGRA for a picture with its own transparency), or a function that
        decodes it (called in the picture's turn, so waiting requests hold their compressed upload,
        not its pixels). ``background_image``: a picture (BGR)
        to put behind the person instead of ``request.background``."""
        if background_image is not None:
            request.background = "picture"
        request = request.checked()
        size = parse_size(request.size, request.dpi) if request.size else None
        background = (ImageBackground(background_image, name="picture") if background_image is not None
                      else self._background(request.background))
        with self.turn() as worker:
            picture = image() if callable(image) else image
            image_out, framing, warnings = self._render(worker, picture, background, size, request.dpi)
        data = encode(image_out, request.format, request.dpi, request.max_kb)
        return PhotoResult(image_out, data, request.format, request.dpi, size, framing, warnings)

    def sheet(self, images: list[np.ndarray], request: PhotoRequest, paper: str = "4x6in",
              copies: int | None = None, background_image: np.ndarray | None = None,
              names: list[str] | None = None) -> PhotoResult:
        """A print sheet of as many copies as fit (several pictures: cycled through). Of several
        pictures, one that cannot make an ID photo (no face, two faces, ...) or be read (``images``
        may be functions that decode them, called in turn: MediaError) is left out with a warning
        naming it (``names``: the pictures' names, for that); so are those beyond the sheet's room,
        which are not even read. Only when none can make a photo is the sheet refused, with the first
        one's reason. ``PhotoResult.left_out`` names the pictures not on the sheet."""
        warnings = []
        if (request.background or "transparent").strip().lower() == "transparent":
            request.background = "white"  # a sheet is printed: transparent areas are paper
            warnings.append("a print sheet has no transparency: the photos are on white")
        if background_image is not None:
            request.background = "picture"
        request.size = request.size or "passport"
        request = request.checked()
        page = parse_paper(paper)
        size = parse_size(request.size, request.dpi)
        # page size and fit, before any work; every photo has the size's pixels: this many fit
        room = plan_sheet([size.pixels(request.dpi)], page, request.dpi, copies).placed
        background = (ImageBackground(background_image, name="picture") if background_image is not None
                      else self._background(request.background))
        photos, refused, left_out, no_room = [], [], [], []
        for i, image in enumerate(images):
            name = names[i] if names is not None and i < len(names) else f"picture {i + 1}"
            if len(photos) >= room:
                no_room.append(name)
                continue
            try:
                with self.turn() as worker:
                    picture = image() if callable(image) else image
                    photo, _, notes = self._render(worker, picture, background, size, request.dpi)
            except (IdPhotoError, MediaError) as exc:
                if len(images) == 1:
                    raise
                refused.append(exc)
                left_out.append(name)
                warnings.append(f"left out {name}: {exc}")
                continue
            photos.append(photo)
            prefix = f"{name}: " if len(images) > 1 else ""  # several pictures: say which one a note is about
            warnings += [prefix + n for n in notes if prefix + n not in warnings]
        if not photos:
            raise type(refused[0])(f"none of the {len(images)} pictures can make an ID photo; the first: {refused[0]}")
        if no_room:
            warnings.append(f"the sheet holds {room} photo{'s' if room != 1 else ''}: left out {', '.join(no_room)} "
                            f"(no room; make another sheet of {'it' if len(no_room) == 1 else 'them'})")
        sheet_image, count = make_sheet(photos, page, request.dpi, copies=copies)
        if count < len(photos):  # (every photo has the size's pixels, so all that were made fit)
            raise IdPhotoError(f"only {count} of {len(photos)} photos fit on the sheet")
        fmt = request.format if request.format in FORMATS else "jpg"
        data = encode(sheet_image, fmt, request.dpi, request.max_kb, what="sheet")
        return PhotoResult(sheet_image, data, fmt, request.dpi, size, None, warnings, count=count,
                           left_out=left_out + no_room)

    # ------------------------------------------------------------------
    def _background(self, value: str):
        """Only colours, transparent and blur: a request never names a file on the server."""
        text = (value or "transparent").strip()
        name = canonical_name(text)
        if not (name in ("transparent", "blur") or name.startswith("blur:") or parse_color(text) is not None):
            raise IdPhotoError(f"unknown background {value!r}: use {BACKGROUND_WORDS}")
        try:
            return make_background(text, blur_strength=self.blur_strength)
        except BackgroundError as exc:
            raise IdPhotoError(str(exc)) from None

    def _render(self, worker: _Worker, image: np.ndarray, background, size: PhotoSize | None,
                dpi: float) -> tuple[np.ndarray, Framing | None, list[str]]:
        engine, compositor, faces_model = worker.engine, worker.compositor, worker.faces
        image, opacity = split_alpha(image)
        if opacity is not None:  # a picture with transparency: used as shown, and what it hid stays hidden
            image = shown_over_grey(image, opacity)
        small = engine.infer(image)
        alpha = compositor.full_alpha(small, image)
        if opacity is not None:
            alpha = alpha * opacity
        compositor.release()  # one-off photos: nothing to reuse, and a full-size alpha is big
        framing, warnings = None, []
        if size is None and not finds_person(alpha_to_numpy(small)):
            warnings.append(NO_PERSON)  # (an ID photo without a person is refused by its framing)
        if size is not None:
            faces = faces_model.detect(image) if faces_model is not None else None
            if faces:
                check_upright(faces_model, image, faces)
            framing = plan_framing(alpha, faces, size, dpi)
            warnings += framing.warnings
            # Crop and scale first: the colours are then estimated on the photo's few hundred
            # thousand pixels, not on the 12 million of a phone picture (seconds saved).
            image, alpha = apply_framing(image, alpha, framing)
        foreground = estimate_foreground(image, alpha) if compositor.decontaminate else image
        room = image  # what a blur background blurs
        if background.transparent:
            alpha8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return np.dstack([foreground, alpha8]), framing, _unique(warnings)
        back = background.render(room, alpha, 0.0)
        try:
            return compositor.blend(foreground, back, alpha), framing, _unique(warnings)
        finally:
            compositor.release()

    def close(self) -> None:
        with self._setup:
            for worker in self._workers:
                worker.engine.close()
                close = getattr(worker.faces, "close", None)
                if close is not None:
                    close()
            self._workers.clear()


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
