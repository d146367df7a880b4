"""Settings: one typed dataclass, built from the command line and an optional config file, validated here.

Precedence: built-in defaults < config file (``--config FILE``, TOML or JSON,
keys are the field names below, or a negated flag such as ``no_window``) <
command-line flags. Every value, wherever it came from, is checked against the
field's type and range in :meth:`Settings.validate`; problems are
:class:`UsageError` (one line, exit code 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from compositing import BACKGROUND_CHOICES, FIT_MODES
from matting import MODELS, RUNTIMES, SMOOTHING_CHOICES, checked_inference_size
from matting.engine import MAX_INFERENCE_SIZE
from realtime.pipeline import MODES
from realtime.sinks import RECORD_FORMATS

from .errors import UsageError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The allowed values of each option that takes a word.
CHOICES = {"model": MODELS, "engine": RUNTIMES, "smoothing": SMOOTHING_CHOICES, "mode": MODES, "fit": FIT_MODES}
#: Numeric options: (lowest allowed, highest allowed, lowest is exclusive).
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "fps": (0, 240, True), "vcam_fps": (0, 240, True), "duration": (0, 1e7, True),
    "stats_interval": (0, 3600, True), "blur_strength": (0, 500, True), "max_frames": (0, 1e9, True),
    "threads": (0, 256, True), "inference_workers": (0, 32, True), "matte_every": (0, 1000, True),
    "max_matte_rate": (0, 1000, True),
}
MAX_CAMERA_SIDE = 8192
#: Config-file keys that are the negated command-line flags (``no_window = true`` -> ``window = false``).
NEGATED_KEYS = {"no_window": "window", "no_mirror": "mirror", "no_hud": "hud", "no_reconnect": "reconnect"}
#: Live-mode options that photo mode (--image) would silently ignore.
LIVE_ONLY = ("source", "record", "vcam", "every_frame", "loop", "max_frames", "duration")


@dataclass
class Settings:
    # --- what to do -------------------------------------------------------
    image: str | None = None            # photo mode input (file or folder)
    output: str | None = None           # photo mode output (file or folder)
    export_onnx: str | None = None      # write MODNet as ONNX to this path and exit
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
            if not math.isfinite(value) or (value <= low if exclusive else value < low):
                raise UsageError(f"{flag(name)} must be {'positive' if low == 0 and exclusive else f'at least {low:g}'}"
                                 f", got {value:g}")
            if value > high:
                raise UsageError(f"{flag(name)} must be at most {high:g}, got {value:g}")
        if self.size is not None and not all(0 < side <= MAX_CAMERA_SIDE for side in self.size):
            raise UsageError(f"--size must be positive and at most {MAX_CAMERA_SIDE} per side, "
                             f"got {self.size[0]}x{self.size[1]}")
        if self.record and Path(self.record).suffix.lower() not in RECORD_FORMATS:
            raise UsageError(f"--record {self.record}: use a file name ending in {', '.join(RECORD_FORMATS)}")
        if self.record and self.source and _same_file(self.record, self.source):
            raise UsageError(f"--record {self.record} is the --source video: it would be overwritten; "
                             f"record to another file")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise UsageError(f"--fourcc must be 4 characters (e.g. MJPG, YUYV), got {self.fourcc!r}")
        if self.every_frame:
            if not self.source:
                raise UsageError("--every-frame is for video files (--source FILE), not cameras")
            if self.mode == "async":
                raise UsageError("--every-frame needs --mode sync (each frame its own matte)")
            if self.max_matte_rate is not None:
                raise UsageError("--max-matte-rate is for live mode; with --every-frame use --matte-every N")
            self.mode = "sync"
        if self.export_onnx:
            target = Path(self.export_onnx)
            if target.is_dir():
                raise UsageError(f"--export-onnx needs a file name, {target} is a folder")
            if self.weights and _same_file(self.export_onnx, self.weights):
                raise UsageError(f"--export-onnx {target} is the --weights file: it would be overwritten")
            if target.exists() and target.suffix.lower() != ".onnx":
                raise UsageError(f"--export-onnx {target} exists and is not an .onnx file: refusing to replace it")
        if self.output and not self.image:
            raise UsageError("--output is for photo mode: use it with --image (live mode records with --record)")
        if self.image:
            if not self.output:
                raise UsageError("--image needs --output (a file, or a folder when --image is a folder)")
            ignored = [flag(name) for name in LIVE_ONLY if getattr(self, name) not in (None, False)]
            if ignored:
                raise UsageError(f"{', '.join(ignored)} cannot be used with --image (photo mode): "
                                 f"drop {'it' if len(ignored) == 1 else 'them'}, or drop --image for live mode")
        return self


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(a).exists() and Path(b).exists()
                                                          and Path(a).samefile(b))
    except OSError:
        return False


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


def on_off(text: str) -> bool:
    value = str(text).strip().lower()
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")
    return value == "on"


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(-?\d+)\s*[xX×,]\s*(-?\d+)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(match.group(1)), int(match.group(2))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error, instead of the usage block
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="live.py",
        description="Real-time webcam background replacement with MODNet portrait matting. "
                    "Live: python live.py [--vcam]. Photos: python live.py --image IN --output OUT.",
    )
    p.add_argument("--config", help="TOML or JSON file of settings (keys as the long options, with _; "
                                    "no_window = true and the like work too)")
    g = p.add_argument_group("photo mode")
    g.add_argument("--image", help="picture, or folder of pictures, to cut out")
    g.add_argument("--output", help="output file (.png keeps transparency) or folder")
    g = p.add_argument_group("source")
    g.add_argument("--camera", help="webcam index or device path (default 0)")
    g.add_argument("--source", help="video file, stream URL or picture to use instead of the webcam")
    g.add_argument("--loop", action="store_true", default=None, help="loop a video source")
    g.add_argument("--every-frame", action="store_true", default=None,
                   help="video files: process every frame as fast as possible instead of in real time "
                        "(offline conversion with --record; implies --mode sync)")
    g.add_argument("--size", type=parse_size, help="requested camera size, e.g. 1280x720")
    g.add_argument("--fps", type=float, help="requested camera frame rate")
    g.add_argument("--fourcc", help="requested camera pixel format, e.g. MJPG")
    g = p.add_argument_group("model")
    g.add_argument("--model", help="modnet (default), selfie (fast, CPU) or auto")
    g.add_argument("--engine", help="MODNet runtime: auto (default: ONNX Runtime for live video on a CPU, "
                                    "PyTorch otherwise), torch or onnx")
    g.add_argument("--weights", help="model file to use instead of the default download")
    g.add_argument("--weights-dir", help="folder for downloaded models (default weights/)")
    g.add_argument("--offline", action="store_true", default=None,
                   help="never use the network (also MODNET_OFFLINE=1)")
    g.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    g.add_argument("--inference-size", type=int,
                   help=f"short side of the network input, a multiple of 32 up to {MAX_INFERENCE_SIZE} "
                        "(default 288 on CPU, 512 on GPU and for photos)")
    g.add_argument("--threads", type=int, help="CPU threads for inference")
    g.add_argument("--inference-workers", type=int,
                   help="frames inferred at once (ONNX engine; default 1 live, 2 for --every-frame on a CPU: "
                        "more throughput, more latency)")
    g.add_argument("--export-onnx", metavar="PATH", help="export MODNet to ONNX and exit")
    g = p.add_argument_group("look")
    g.add_argument("--smoothing", help="temporal matte smoothing: ema (default), ofd, ofd+ema, none")
    g.add_argument("--background", "--bg",
                   help=f"{BACKGROUND_CHOICES}, or a picture/video file or a name in backgrounds/ "
                        "(default: blur live, transparent for photos)")
    g.add_argument("--fit", help="how pictures fill the frame: cover (default), contain, stretch")
    g.add_argument("--blur-strength", type=float, help="blur sigma in pixels at 720p (default 12)")
    g.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="guided-filter edge refinement (default: on for selfie, off for MODNet)")
    g.add_argument("--decontaminate", action=argparse.BooleanOptionalAction, default=None,
                   help="remove the old background's tint from hair and edges (default: photos only)")
    g.add_argument("--backgrounds-dir", help="folder of background pictures and videos (default backgrounds/)")
    g = p.add_argument_group("output")
    g.add_argument("--mode", help="sync (every frame its own matte) or async (camera rate, newest matte)")
    g.add_argument("--motion-comp", type=on_off, metavar="on|off",
                   help="move the newest matte onto each frame shown with it, along the optical flow, so edges "
                        "keep up with motion between mattes (default on)")
    g.add_argument("--matte-every", type=int, metavar="N",
                   help="infer every N-th frame only; the frames between reuse the newest matte, motion-"
                        "compensated (default 1: every frame the engine can take)")
    g.add_argument("--skip-still", type=on_off, metavar="on|off",
                   help="live: while nothing moves (beyond sensor noise), keep the matte instead of running "
                        "the model again; re-checked every 2 s (default on)")
    g.add_argument("--max-matte-rate", type=float, metavar="HZ",
                   help="live: at most HZ mattes per second (less CPU; the output keeps the camera's rate)")
    g.add_argument("--no-window", dest="window", action="store_false", default=None, help="no preview window")
    g.add_argument("--no-mirror", dest="mirror", action="store_false", default=None,
                   help="do not mirror the preview")
    g.add_argument("--no-hud", dest="hud", action="store_false", default=None, help="hide the HUD")
    g.add_argument("--vcam", action="store_true", default=None, help="also send to a virtual camera")
    g.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    g.add_argument("--vcam-backend", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    g.add_argument("--vcam-fps", type=float, help="virtual camera frame rate (default: the source's)")
    g.add_argument("--pause-unwatched", type=on_off, metavar="on|off",
                   help="with --vcam as the only output: while no app reads the virtual camera, stop inference "
                        "and send the last frame once a second (Linux v4l2loopback; default on)")
    g.add_argument("--record", metavar="FILE", help=f"record the output to a video file ({', '.join(RECORD_FORMATS)})")
    g.add_argument("--snapshot-dir", help="folder for snapshots (default: current folder)")
    g.add_argument("--stats", action="store_true", default=None,
                   help="print fps and latency every few seconds and at exit")
    g.add_argument("--stats-interval", type=float, help="seconds between --stats lines (default 5)")
    g.add_argument("--max-frames", type=int, help="stop after N output frames")
    g.add_argument("--duration", type=float, help="stop after N seconds")
    g.add_argument("--no-reconnect", dest="reconnect", action="store_false", default=None,
                   help="end the run when the camera is lost instead of reconnecting")
    g.add_argument("-v", "--verbose", action="store_true", default=None, help="debug logging")
    return p


def load_config_file(path: str) -> dict[str, Any]:
    """The settings in a TOML or JSON file, keys normalised to field names (types checked later)."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except Exception as exc:
        raise UsageError(f"cannot parse config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a table of settings")
    known = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in NEGATED_KEYS:
            if not isinstance(value, bool):
                raise UsageError(f"{key} = {value!r} in {path} is not valid: expected true or false")
            name, value = NEGATED_KEYS[name], not value
        if name not in known:
            raise UsageError(f"unknown setting {key!r} in {path}; valid keys: "
                             + ", ".join(sorted(known | set(NEGATED_KEYS))))
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


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Parse ``argv`` (and ``--config``) into validated :class:`Settings`."""
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    given = {key for key, value in vars(args).items() if key != "config" and value is not None}
    if args.config:
        values.update(load_config_file(args.config))
        if values.get("image") or args.image:
            # one config file serves both modes: its live-only settings do not apply to photos
            for name in LIVE_ONLY:
                if name not in given and values.pop(name, None) not in (None, False):
                    log.debug("photo mode: ignoring %s from %s", name, args.config)
    values.update({key: getattr(args, key) for key in given})
    return Settings(**values).validate()
