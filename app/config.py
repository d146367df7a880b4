"""Settings: one typed dataclass, built from the command line and an optional config file, validated here.

Precedence: built-in defaults < config file (``--config FILE``, TOML or JSON,
keys are the field names below, or a negated flag such as ``no_window``) <
command-line flags. Every value, wherever it came from, is checked against the
field's type and range in :meth:`Settings.validate`; problems are
:class:`UsageError` (one line, exit code 2).
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from compositing import FIT_MODES, MediaError
from compositing.backgrounds import find_background_file
from compositing.media import opencv_path
from matting import MODELS, RUNTIMES, SMOOTHING_CHOICES, checked_inference_size
from realtime.pipeline import MODES
from realtime.sinks import RECORD_FORMATS, VCAM_BACKENDS, vcam_backends
from realtime.sources import camera_problem, is_picture

from .arguments import build_parser
from .config_file import read_config_file
from .errors import UsageError
from .paths import same_file, shortened, too_long

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The allowed values of each option that takes a word.
CHOICES = {"model": MODELS, "engine": RUNTIMES, "smoothing": SMOOTHING_CHOICES, "mode": MODES, "fit": FIT_MODES}
#: Numeric options: (lowest allowed, highest allowed, lowest is exclusive).
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "fps": (0, 240, True), "vcam_fps": (0, 240, True), "duration": (0, 10_000_000, True),
    "stats_interval": (0, 3600, True), "blur_strength": (0, 500, True), "max_frames": (0, 1_000_000_000, True),
    "threads": (0, 256, True), "inference_workers": (0, 32, True), "matte_every": (0, 1000, True),
    "max_matte_rate": (0.01, 1000, False), "port": (1, 65535, False), "max_upload_mb": (0, 10_000, True),
    "web_jobs": (1, 16, False), "inference_share": (0.01, 1, False), "dpi": (72, 1200, False), "max_kb": (0, 100_000, True),
}
MAX_CAMERA_SIDE = 8192
#: Live-mode options that photo mode (--image) would silently ignore.
LIVE_ONLY = ("source", "record", "vcam", "every_frame", "loop", "max_frames", "duration", "size", "fps", "fourcc",
             "vcam_device", "vcam_backend", "vcam_fps")
#: Live-mode settings that photo mode would ignore too, with their defaults: refused with --image once changed.
LIVE_TUNING = {"camera": "0", "motion_comp": True, "matte_every": 1, "max_matte_rate": None,
               "inference_share": None, "skip_still": True, "pause_unwatched": True, "stats": False,
               "stats_interval": 5.0}
#: Settings of a real-time run that a conversion (--every-frame on the command line) cannot use: left out
#: when they come from a config file (one file serves live runs and conversions), refused when given on the
#: command line or beside ``every_frame = true`` in the file itself.
REALTIME_ONLY = ("max_matte_rate", "inference_share", "vcam", "vcam_device", "vcam_backend", "vcam_fps", "mode")
#: Settings of a webcam: refused with a --source (but --fps sets a picture source's rate), except
#: with --web, where they serve a camera picked in the Live tab.
WEBCAM_ONLY = ("camera", "size", "fps", "fourcc")
#: Photo-mode options that need --image (or --web, where the studio asks for them per picture).
ID_PHOTO = ("id_size", "max_kb", "sheet", "dpi")


def shown(value: float) -> str:
    """A number as a message gives it: an integer in full (``--port 99999999999999999999``), a float short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


@dataclass
class Settings:
    # --- what to do -------------------------------------------------------
    image: str | None = None            # photo mode input (file or folder)
    output: str | None = None           # photo mode output (file or folder)
    export_onnx: str | None = None      # write MODNet as ONNX to this path and exit
    overwrite: bool = False             # replace existing output files (--output, --record, --export-onnx)
    # --- source -----------------------------------------------------------
    camera: str = "0"                   # webcam index or device path
    source: str | None = None           # video file, URL or picture instead of the webcam
    loop: bool = False                  # loop a video source
    every_frame: bool = False           # files: process every frame, unpaced (offline conversion)
    size: tuple[int, int] | None = None  # requested camera size (width, height)
    fps: float | None = None            # requested camera fps
    fourcc: str | None = None           # requested camera pixel format, e.g. MJPG
    # --- model --------------------------------------------------------------
    model: str = "modnet"               # modnet | selfie | auto
    engine: str = "auto"                # auto | torch | onnx (MODNet's runtime; auto: onnx on CPU live)
    weights: str | None = None          # checkpoint / model file; default: download into weights/
    weights_dir: str = str(PROJECT_ROOT / "weights")
    offline: bool = False
    device: str = "auto"                # auto | cpu | cuda | cuda:N | mps
    inference_size: int | None = None   # short side of the network input; None = per mode/device
    threads: int | None = None          # CPU threads for inference
    inference_workers: int | None = None  # concurrent inference threads; None = 1 live, 2 for --every-frame on CPU
    # --- temporal smoothing and compositing --------------------------------
    smoothing: str | None = None        # none | ema | ofd | ofd+ema; None = engine default
    background: str | None = None       # starting background; None = blur live, transparent photo
    fit: str = "cover"                  # cover | contain | stretch
    blur_strength: float = 12.0
    refine: bool | None = None          # guided-filter upsampling; None = engine default
    decontaminate: bool | None = None   # foreground colour estimation; None = on for photos
    backgrounds_dir: str = str(PROJECT_ROOT / "backgrounds")
    # --- timing and sinks ---------------------------------------------------
    mode: str | None = None             # sync | async; None = async on CPU, sync on GPU
    motion_comp: bool = True            # move a matte from its older frame onto the shown one (optical flow)
    matte_every: int = 1                # infer every N-th frame; the others reuse the newest matte
    max_matte_rate: float | None = None  # live: at most this many mattes per second
    inference_share: float | None = None  # live: at most this share of the time inferring; None = per engine
    skip_still: bool = True             # live: no new matte while the scene is still (refreshed every 2 s)
    window: bool = True
    mirror: bool = True                 # mirror the preview (self-view); never the virtual camera
    hud: bool = True
    vcam: bool = False
    vcam_device: str | None = None
    vcam_backend: str | None = None
    vcam_fps: float | None = None
    pause_unwatched: bool = True        # --vcam alone: pause while no app reads the virtual camera (Linux)
    record: str | None = None
    snapshot_dir: str = "."
    stats: bool = False
    stats_interval: float = 5.0
    max_frames: int | None = None       # stop after this many output frames
    duration: float | None = None       # stop after this many seconds
    reconnect: bool = True              # keep retrying a lost camera (live sources)
    verbose: bool = False
    # --- ID photos (photo mode) ---------------------------------------------
    id_size: str | None = None          # ID-photo size: a preset id (passport, us, ...), WxHmm, WxHin or WxHpx
    dpi: float | None = None            # ID photos and sheets: print resolution, written into the file (300)
    max_kb: float | None = None         # ID photos: largest file size (JPEG quality is lowered to fit)
    sheet: str | None = None            # ID photos: write a print sheet on this paper (4x6in, a4, ...)
    face_weights: str | None = None     # face detector model file; default: download MediaPipe's
    # --- web server ---------------------------------------------------------
    web: bool = False                   # serve the studio and the live panel
    host: str = "127.0.0.1"             # loopback only unless set
    port: int = 7860
    token: str | None = None            # access token; generated when --host is not loopback
    max_upload_mb: float = 25.0
    web_jobs: int = 1                   # pictures processed at once by the studio

    def validate(self) -> "Settings":
        """Check every value's type and range, and combinations of options; returns ``self``."""
        check_types(self)
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise UsageError(f"{flag(name)} must be one of {', '.join(allowed)}, got {value!r}")
        if self.inference_size is not None:
            try:
                self.inference_size = checked_inference_size(self.inference_size)
            except ValueError as exc:
                raise UsageError(str(exc).replace("inference size", "--inference-size", 1)) from None
        for name, (low, high, exclusive) in BOUNDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not math.isfinite(value):
                raise UsageError(f"{flag(name)} must be a finite number, got {shown(value)}")
            if value <= low if exclusive else value < low:
                raise UsageError(f"{flag(name)} must be {'positive' if low == 0 and exclusive else f'at least {low:g}'}"
                                 f", got {shown(value)}")
            if value > high:
                raise UsageError(f"{flag(name)} must be at most {shown(high)}, got {shown(value)}")
        for name in ("background", "source", "record", "output", "image", "camera", "weights", "face_weights",
                     "snapshot_dir", "vcam_device", "backgrounds_dir", "id_size"):  # "" was taken as left out
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise UsageError(f"{flag(name)} is empty: give a value, or leave the option out")
        for name in ("background", "source", "record", "output", "image", "camera", "weights", "face_weights",
                     "snapshot_dir", "vcam_device", "backgrounds_dir", "weights_dir", "export_onnx"):
            if too_long(getattr(self, name)):  # (every later check of it gave a traceback)
                raise UsageError(f"{flag(name)}: file name too long for this system: {shortened(getattr(self, name))}")
        if Path(self.backgrounds_dir).exists() and not Path(self.backgrounds_dir).is_dir():
            raise UsageError(f"--backgrounds-dir {self.backgrounds_dir} is a file: give a folder (of pictures "
                             f"and videos; a missing one is made when a picture is uploaded into it)")
        if self.vcam_device and not self.image and sys.platform.startswith("linux"):  # (elsewhere: a name)
            device = Path(self.vcam_device)
            if not device.exists():
                raise UsageError(f"--vcam-device {device} does not exist (v4l2loopback's devices are /dev/videoN: "
                                 f"'v4l2-ctl --list-devices' lists them)")
            if device.is_dir():
                raise UsageError(f"--vcam-device {device} is a folder: give the device, such as /dev/video10")
        if self.vcam_backend is not None and self.vcam and not self.image:  # (unused without --vcam)
            available = vcam_backends()
            known = sorted({*VCAM_BACKENDS, *(available or ())})
            if self.vcam_backend not in known:
                raise UsageError(f"--vcam-backend is one of {', '.join(known)}; got {self.vcam_backend!r}")
            if available is not None and self.vcam_backend not in available:
                raise UsageError(f"--vcam-backend {self.vcam_backend} is not available on this system (pyvirtualcam "
                                 f"has {', '.join(available) or 'none'} here; obs: Windows and macOS, unitycapture: "
                                 f"Windows)")
        cores = os.cpu_count() or 1
        if self.threads is not None and self.threads > cores:
            log.warning("--threads %d is more than this machine's %d CPU cores: inference gets slower, not faster",
                        self.threads, cores)
        if self.size is not None and not all(0 < side <= MAX_CAMERA_SIDE for side in self.size):
            raise UsageError(f"--size must be positive and at most {MAX_CAMERA_SIDE} per side, "
                             f"got {self.size[0]}x{self.size[1]}")
        if self.record and Path(self.record).is_dir():
            raise UsageError(f"--record needs a file name, {self.record} is a folder")
        if self.record and Path(self.record).suffix.lower() not in RECORD_FORMATS:
            hidden = Path(self.record).name.lower() in RECORD_FORMATS  # ".mp4": a name that is all extension
            raise UsageError(f"--record {self.record}: " + (f"give the file a name before {Path(self.record).name}, "
                             "such as call.mp4" if hidden else
                             f"use a file name ending in {', '.join(RECORD_FORMATS)}"))
        if self.record and self.source and same_file(self.record, self.source):
            raise UsageError(f"--record {self.record} is the --source video: it would be overwritten; "
                             f"record to another file")
        if self.record and self.background and same_file(self.record, _background_file(self) or self.background):
            raise UsageError(f"--record {self.record} is the --background video: it would be overwritten; "
                             f"record to another file")
        if self.record and not Path(self.record).parent.is_dir():
            raise UsageError(f"--record {self.record}: folder {Path(self.record).parent} does not exist")
        if self.record:
            try:
                opencv_path(self.record)
            except MediaError as exc:
                raise UsageError(f"--record: {exc}") from None
        if self.record and not os.access(Path(self.record).parent, os.W_OK):
            raise UsageError(f"--record {self.record}: folder {Path(self.record).parent} is not writable")
        if self.record and Path(self.record).exists() and not self.overwrite:
            raise UsageError(f"--record {self.record} exists: refusing to overwrite it; "
                             f"record to another file, or add --overwrite to replace it")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise UsageError(f"--fourcc must be 4 characters (e.g. MJPG, YUYV), got {self.fourcc!r}")
        if self.every_frame:
            if not self.source:
                raise UsageError("--every-frame is for video files (--source FILE), not cameras")
            if self.mode == "async":
                raise UsageError("--every-frame needs --mode sync (each frame its own matte)")
            if self.max_matte_rate is not None or self.inference_share is not None:
                raise UsageError(f"{'--max-matte-rate' if self.max_matte_rate is not None else '--inference-share'}"
                                 " is for live mode; with --every-frame use --matte-every N")
            if is_picture(self.source):
                raise UsageError(f"--every-frame converts video files, and {self.source} is a picture: "
                                 f"use --image {self.source} --output OUT for a photo")
            if self.vcam:
                raise UsageError("--vcam needs a real-time run: a virtual camera fed a file as fast as it converts "
                                 "plays it at the wrong speed; drop --every-frame (--source FILE plays in real time)")
            if self.loop and self.max_frames is None and self.duration is None:
                raise UsageError("--every-frame --loop would never end: add --max-frames N or --duration SECONDS")
            self.mode = "sync"
        if self.export_onnx:
            target = Path(self.export_onnx)
            if target.is_dir():
                raise UsageError(f"--export-onnx needs a file name, {target} is a folder")
            folder = target.parent if str(target.parent) else Path(".")
            if not folder.is_dir():
                raise UsageError(f"--export-onnx: folder {folder} does not exist")
            if not os.access(folder, os.W_OK):
                raise UsageError(f"--export-onnx: folder {folder} is not writable")
            if self.weights and same_file(self.export_onnx, self.weights):
                raise UsageError(f"--export-onnx {target} is the --weights file: it would be overwritten")
            if target.exists() and target.suffix.lower() != ".onnx":
                raise UsageError(f"--export-onnx {target} exists and is not an .onnx file: refusing to replace it")
            if target.exists() and not self.overwrite:
                raise UsageError(f"--export-onnx {target} exists: refusing to overwrite it; "
                                 f"choose another file name, or add --overwrite to replace it")
        if self.id_size is not None or self.sheet is not None:
            from idphoto import IdPhotoError, parse_paper, parse_size as parse_id_size

            try:
                parse_id_size(self.id_size or "passport", self.dpi or 300.0)
                if self.sheet is not None:
                    parse_paper(self.sheet)
            except IdPhotoError as exc:
                raise UsageError(f"{'--sheet' if self.sheet is not None and 'paper' in str(exc).lower() else '--id-size'}: "
                                 f"{exc}") from None
        if self.face_weights is not None and not Path(self.face_weights).expanduser().is_file():
            raise UsageError(f"--face-weights {self.face_weights} is a folder: give the face model file in it"
                             if Path(self.face_weights).expanduser().is_dir() else
                             f"--face-weights: no such model file: {self.face_weights}")
        used = [flag(name) for name in ID_PHOTO if getattr(self, name) is not None]
        if used and not self.image:
            raise UsageError(f"{', '.join(used)} {'is' if len(used) == 1 else 'are'} for ID photos: "
                             f"use with --image IN --output OUT --id-size SIZE (the --web studio asks for "
                             f"them per picture)")
        if self.image and self.id_size is None and (self.max_kb is not None or self.dpi is not None):
            raise UsageError("--max-kb and --dpi are for ID photos: add --id-size SIZE (passport, us, 35x45mm, ...)")
        if self.web:
            if self.image:
                raise UsageError("--web serves the studio in the browser: drop --image (or drop --web)")
            if self.every_frame:
                raise UsageError("--web is live: drop --every-frame")
        elif self.token is not None:
            raise UsageError("--token is for the web server: use it with --web")
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device.strip().lower()):
            raise UsageError(f"--device: unknown device {self.device!r}: use auto, cpu, cuda, cuda:N or mps")
        if self.model == "selfie" and self.device.strip().lower() not in ("auto", "cpu"):
            raise UsageError(f"--device {self.device} is for MODNet: the selfie model runs on the CPU; "
                             f"drop --device, or use --model modnet")
        if camera_problem(self.camera):
            raise UsageError(f"--camera: {camera_problem(self.camera)}")
        if self.source and not self.web and not self.image:  # (--web: they serve a camera picked in the Live tab)
            picture = is_picture(self.source)
            ignored = [flag(name) for name in WEBCAM_ONLY if getattr(self, name) not in (None, "0")
                       and not (name == "fps" and picture)]  # a picture source is shown at --fps
            if ignored:
                raise UsageError(f"{', '.join(ignored)} {'sets' if len(ignored) == 1 else 'set'} up a webcam, but "
                                 f"--source {self.source} plays {'a picture' if picture else 'at its own size and rate'}"
                                 f": drop {'it' if len(ignored) == 1 else 'them'}, or drop --source for the webcam")
        if self.output and not self.image:
            raise UsageError("--output is for photo mode: use it with --image (live mode records with --record)")
        if self.image:
            if not self.output:
                raise UsageError("--image needs --output (a file, or a folder when --image is a folder)")
            ignored = [flag(name) for name in LIVE_ONLY if getattr(self, name) not in (None, False)]
            ignored += [flag(name) for name, default in LIVE_TUNING.items() if getattr(self, name) != default]
            if ignored:
                raise UsageError(f"{', '.join(ignored)} cannot be used with --image (photo mode): "
                                 f"drop {'it' if len(ignored) == 1 else 'them'}, or drop --image for live mode")
        return self


def _background_file(settings: Settings) -> Path | None:
    """The file ``--background`` names, as the run finds it (a path, ``~``, a name in backgrounds/)."""
    try:
        return find_background_file(settings.background, [settings.backgrounds_dir])
    except OSError:  # a backgrounds folder that cannot be listed: the run says so later
        return None


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _type_hints() -> dict[str, Any]:
    return typing.get_type_hints(Settings)


def check_types(settings: Settings) -> None:
    """Every field holds a value of its declared type (config files can hold anything)."""
    for name, hint in _type_hints().items():
        value = getattr(settings, name)
        allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType) else (hint,)
        if value is None and type(None) in allowed:
            continue
        if not any(_is_instance(value, t) for t in allowed if t is not type(None)):
            raise UsageError(f"{name} = {value!r} is not valid: expected {_describe(hint)}")


def _is_instance(value: Any, hint: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typing.get_origin(hint) is tuple:
        return isinstance(value, tuple) and len(value) == len(typing.get_args(hint)) and \
            all(_is_instance(v, t) for v, t in zip(value, typing.get_args(hint)))
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    allowed = [t for t in (typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _UnionType)
                           else (hint,)) if t is not type(None)]
    words = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    return " or ".join(words.get(t, "WIDTHxHEIGHT such as \"1280x720\"") for t in allowed)


_UnionType = type(int | None)


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Parse ``argv`` (and ``--config``) into validated :class:`Settings`."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    given = {key for key, value in vars(args).items() if key != "config" and value is not None}
    if args.config:
        values.update(read_config_file(args.config, {f.name for f in fields(Settings)}))
        if values.get("image") or args.image:
            # one config file serves both modes: its live-only settings do not apply to photos
            for name in (*LIVE_ONLY, *LIVE_TUNING):
                if name not in given and values.pop(name, None) not in (None, False):
                    log.debug("photo mode: ignoring %s from %s", name, args.config)
        elif (values.get("source") or args.source) and not (values.get("web") or args.web):
            for name in WEBCAM_ONLY:  # nor its webcam settings to a --source
                if name not in given and values.pop(name, None) is not None:
                    log.debug("--source: ignoring %s from %s", name, args.config)
        if args.every_frame:  # nor its real-time settings to a conversion asked for on the command line
            for name in REALTIME_ONLY:
                if name not in given and values.get(name) not in (None, False, "sync"):
                    log.info("--every-frame: leaving out %s from %s (a conversion does not use it)", name,
                             args.config)
                    del values[name]
    values.update({key: getattr(args, key) for key in given})
    if args.export_onnx:  # it writes the file and exits: any other work asked for would silently not happen
        other = [flag(name) for name in ("image", "web", "source", "record", "vcam", "every_frame") if values.get(name)]
        if other:
            raise UsageError(f"--export-onnx writes the ONNX file and exits, so {', '.join(other)} would not "
                             f"run: give them in a command of their own")
    return Settings(**values).validate()
