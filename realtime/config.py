"""Settings: one typed dataclass, built from the command line and an optional config file.

Precedence: built-in defaults < config file (``--config FILE``, TOML or JSON,
keys are the field names below) < command-line flags.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from matting.engine import round_to_block

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class UsageError(ValueError):
    """A bad command-line or config value; reported as one line, exit code 2."""


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
    window: bool = True
    mirror: bool = True                 # mirror the preview (self-view); never the virtual camera
    hud: bool = True
    vcam: bool = False
    vcam_device: str | None = None
    vcam_backend: str | None = None
    vcam_fps: float | None = None
    record: str | None = None
    snapshot_dir: str = "."
    stats: bool = False
    stats_interval: float = 5.0
    max_frames: int | None = None       # stop after this many output frames
    duration: float | None = None       # stop after this many seconds
    reconnect: bool = True              # keep retrying a lost camera (live sources)
    verbose: bool = False

    def validate(self) -> "Settings":
        from realtime.compositor import FIT_MODES

        choices = {
            "model": ("modnet", "selfie", "auto"),
            "engine": ("auto", "torch", "onnx"),
            "smoothing": (None, "none", "ema", "ofd", "ofd+ema"),
            "mode": (None, "sync", "async"),
            "fit": FIT_MODES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                shown = ", ".join(a for a in allowed if a)
                raise UsageError(f"--{name.replace('_', '-')} must be one of {shown}, got {getattr(self, name)!r}")
        if self.inference_size is not None:
            if self.inference_size <= 0:
                raise UsageError(f"--inference-size must be positive, got {self.inference_size}")
            rounded = round_to_block(self.inference_size)
            if rounded != self.inference_size:
                log.warning("--inference-size %d is not a multiple of 32; using %d", self.inference_size, rounded)
                self.inference_size = rounded
        for name in ("fps", "vcam_fps", "duration", "stats_interval", "blur_strength"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
        for name in ("max_frames", "threads", "inference_workers"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.size is not None and (self.size[0] <= 0 or self.size[1] <= 0):
            raise UsageError(f"--size must be positive, got {self.size[0]}x{self.size[1]}")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise UsageError(f"--fourcc must be 4 characters (e.g. MJPG, YUYV), got {self.fourcc!r}")
        if self.every_frame:
            if not self.source:
                raise UsageError("--every-frame is for video files (--source FILE), not cameras")
            if self.mode == "async":
                raise UsageError("--every-frame needs --mode sync (each frame its own matte)")
            self.mode = "sync"
        if self.output and not self.image:
            raise UsageError("--output is for photo mode: use it with --image (live mode records with --record)")
        if self.image and not self.output:
            raise UsageError("--image needs --output (a file, or a folder when --image is a folder)")
        return self


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(-?\d+)\s*[xX×,]\s*(-?\d+)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="live.py",
        description="Real-time webcam background replacement with MODNet portrait matting. "
                    "Live: python live.py [--vcam]. Photos: python live.py --image IN --output OUT.",
    )
    p.add_argument("--config", help="TOML or JSON file of settings (keys as the long options, with _)")
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
                   help="short side of the network input, a multiple of 32 (default 288 on CPU, "
                        "512 on GPU and for photos)")
    g.add_argument("--threads", type=int, help="CPU threads for inference")
    g.add_argument("--inference-workers", type=int,
                   help="frames inferred at once (ONNX engine; default 1 live, 2 for --every-frame on a CPU: "
                        "more throughput, more latency)")
    g.add_argument("--export-onnx", metavar="PATH", help="export MODNet to ONNX and exit")
    g = p.add_argument_group("look")
    g.add_argument("--smoothing", help="temporal matte smoothing: ema (default), ofd, ofd+ema, none")
    g.add_argument("--background", "--bg",
                   help="blur (default live), none, transparent, red|blue|green|white|#RRGGBB, "
                        "or a picture/video file or a name in backgrounds/")
    g.add_argument("--fit", help="how pictures fill the frame: cover (default), contain, stretch")
    g.add_argument("--blur-strength", type=float, help="blur sigma in pixels at 720p (default 12)")
    g.add_argument("--refine", action=argparse.BooleanOptionalAction, default=None,
                   help="guided-filter edge refinement (default: on for selfie, off for MODNet)")
    g.add_argument("--decontaminate", action=argparse.BooleanOptionalAction, default=None,
                   help="remove the old background's tint from hair and edges (default: photos only)")
    g.add_argument("--backgrounds-dir", help="folder of background pictures and videos (default backgrounds/)")
    g = p.add_argument_group("output")
    g.add_argument("--mode", help="sync (every frame its own matte) or async (camera rate, newest matte)")
    g.add_argument("--no-window", dest="window", action="store_false", default=None, help="no preview window")
    g.add_argument("--no-mirror", dest="mirror", action="store_false", default=None,
                   help="do not mirror the preview")
    g.add_argument("--no-hud", dest="hud", action="store_false", default=None, help="hide the HUD")
    g.add_argument("--vcam", action="store_true", default=None, help="also send to a virtual camera")
    g.add_argument("--vcam-device", help="virtual camera device, e.g. /dev/video10")
    g.add_argument("--vcam-backend", help="pyvirtualcam backend (v4l2loopback, obs, unitycapture)")
    g.add_argument("--record", metavar="FILE", help="record the output to a video file (.mp4, .avi)")
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
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"config file not found: {path}")
    text = file.read_text(encoding="utf-8")
    try:
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
    unknown = sorted(k for k in data if k.replace("-", "_") not in known)
    if unknown:
        raise UsageError(f"unknown settings in {path}: {', '.join(unknown)}")
    values = {k.replace("-", "_"): v for k, v in data.items()}
    if isinstance(values.get("size"), (str, list)):
        values["size"] = parse_size(values["size"]) if isinstance(values["size"], str) else tuple(values["size"])
    return values


def settings_from_args(argv: Sequence[str] | None = None) -> Settings:
    """Parse ``argv`` (and ``--config``) into validated :class:`Settings`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        values.update(load_config_file(args.config))
    for key, value in vars(args).items():
        if key != "config" and value is not None:
            values[key] = value
    try:
        settings = Settings(**values)
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    if settings.camera is not None:
        settings.camera = str(settings.camera)
    return settings.validate()
