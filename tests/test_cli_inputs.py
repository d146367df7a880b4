"""What a new user types: config files, out-of-range numbers, background spellings, messages, exit codes.

Everything runs the real command line (``live.py``) in a subprocess, as users do.
"""

import importlib.util
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, str(ROOT / "live.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env={**os.environ, "MODNET_OFFLINE": "1"})


def one_error_line(r, code=2):
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture
def still(tmp_path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.full((64, 96, 3), 90, np.uint8))
    return path


@pytest.fixture
def small_ckpt_args(reference_ckpt):
    return ["--weights", str(reference_ckpt), "--inference-size", "64"]


# --- config files -------------------------------------------------------------

@pytest.mark.parametrize("line,words", [
    ('inference_size = "big"', ["inference_size", "'big'", "whole number"]),
    ("size = 1280", ["size", "1280", "WIDTHxHEIGHT"]),
    ('vcam = "no"', ["vcam", "'no'", "true or false"]),
    ("fps = true", ["fps", "True", "a number"]),
    ('mirror = "yes"', ["mirror", "'yes'", "true or false"]),
    ("no_window = 1", ["no_window", "true or false"]),
    ("background = 3", ["background", "3", "string"]),
    ('size = "big"', ["size", "WIDTHxHEIGHT"]),
])
def test_config_value_of_the_wrong_type_is_one_line(tmp_path, line, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text(line + "\n")
    error = one_error_line(run_cli("--config", cfg, "--no-window", "--max-frames", "1"))
    for word in words:
        assert word in error, error


def test_config_accepts_the_negated_flag_names(tmp_path):
    from app.config import settings_from_args

    cfg = tmp_path / "c.toml"
    cfg.write_text("no_window = true\nno-mirror = true\nno_hud = false\ncamera = 1\n")
    s = settings_from_args(["--config", str(cfg)])
    assert (s.window, s.mirror, s.hud, s.camera) == (False, False, True, "1")
    json_cfg = tmp_path / "c.json"
    json_cfg.write_text('{"no_window": true, "size": [640, 360], "inference_size": null}')
    s = settings_from_args(["--config", str(json_cfg)])
    assert (s.window, s.size, s.inference_size) == (False, (640, 360), None)


# --- numbers out of range -------------------------------------------------------

@pytest.mark.parametrize("args,text", [
    (["--inference-size", "100000"], "--inference-size must be at most 2048"),
    (["--size", "100000x100000"], "--size must be positive and at most 8192"),
    (["--fps", "1e9"], "--fps must be at most 240"),
    (["--fps", "nan"], "--fps must be a finite number"),
    (["--blur-strength", "1e12"], "--blur-strength must be at most 500"),
    (["--threads", "100000"], "--threads must be at most 256"),
    (["--inference-workers", "999"], "--inference-workers must be at most 32"),
    (["--matte-every", "99999999999999999999"], "--matte-every must be at most 1000, got 99999999999999999999"),
    (["--stats-interval", "inf"], "--stats-interval must be a finite number"),
    (["--vcam-fps", "-1"], "--vcam-fps must be positive"),
    (["--max-matte-rate", "1e-320"], "--max-matte-rate must be at least 0.01"),   # (meant: never a new matte)
    (["--inference-share", "1e-320"], "--inference-share must be at least 0.01"),
    (["--vcam", "--vcam-device", "/nonexistent/video9"], "--vcam-device /nonexistent/video9 does not exist"),
    (["--vcam", "--vcam-device", "/dev"], "--vcam-device /dev is a folder"),
    (["--background", " "], "--background is empty"),  # (it was taken as left out)
    (["--record", ""], "--record is empty"),
    (["--vcam", "--vcam-backend", "foo"], "--vcam-backend is one of obs, unitycapture, v4l2loopback; got 'foo'"),
    *([(["--vcam", "--vcam-backend", "obs"], "--vcam-backend obs is not available on this system (pyvirtualcam "
                                             "has v4l2loopback here")]
      if sys.platform.startswith("linux") and importlib.util.find_spec("pyvirtualcam") else []),
])
def test_numbers_out_of_range_are_refused_with_one_line(still, args, text):
    error = one_error_line(run_cli("--source", still, "--no-window", "--max-frames", "1", *args))
    assert text in error, error


# --- background names ---------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["key green", "keygreen", "Key-Green", "key_green"])
def test_key_green_spellings(small_ckpt_args, still, tmp_path, spelling):
    out = tmp_path / "key.png"
    r = run_cli("--image", still, "--output", out, "--background", spelling, *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (64, 96, 3)  # a colour background: no transparency


def test_help_lists_the_background_names():
    r = run_cli("--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for name in ("key green", "blur", "transparent", "white", "#RRGGBB"):
        assert name in text, text


def test_the_cycle_and_the_value_spell_key_green_the_same(tmp_path):
    from compositing import BackgroundLibrary, make_background

    assert "key green" in BackgroundLibrary(tmp_path).names
    assert make_background("keygreen").name == make_background("key green").name == "key green"


# --- messages -------------------------------------------------------------------------

def test_record_where_the_file_cannot_be_created_says_so(small_ckpt_args, still):
    error = one_error_line(run_cli("--source", still, "--no-window", "--max-frames", "1", "--record",
                                   "/proc/out.mp4", *small_ckpt_args), code=1)
    assert "cannot be created" in error and "use .mp4" not in error, error


@pytest.mark.parametrize("name", ["out.txt", "out"])
def test_record_with_an_unknown_extension_names_the_formats(still, tmp_path, name):
    error = one_error_line(run_cli("--source", still, "--no-window", "--max-frames", "1", "--record",
                                   tmp_path / name))
    assert ".mp4" in error and ".avi" in error, error
    assert not (tmp_path / name).exists()


def test_output_without_extension_is_not_called_transparency(small_ckpt_args, still, tmp_path):
    error = one_error_line(run_cli("--image", still, "--output", tmp_path / "result", *small_ckpt_args))
    assert "no file extension" in error and "cannot hold transparency" not in error, error
    error = one_error_line(run_cli("--image", still, "--output", tmp_path / "result", "--background", "blue",
                                   *small_ckpt_args))
    assert "no file extension" in error, error


def test_folder_input_with_a_picture_name_as_output(small_ckpt_args, still, tmp_path):
    error = one_error_line(run_cli("--image", still.parent, "--output", tmp_path / "one.png", *small_ckpt_args))
    assert "must be a folder" in error
    assert not (tmp_path / "one.png").exists()


def test_empty_input_folder_creates_nothing(small_ckpt_args, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    error = one_error_line(run_cli("--image", empty, "--output", tmp_path / "out", *small_ckpt_args))
    assert "no pictures" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra", [["--source", "clip.mp4"], ["--record", "x.mp4"], ["--vcam"], ["--loop"],
                                   ["--matte-every", "6"], ["--max-matte-rate", "2"], ["--inference-share", "0.5"],
                                   ["--skip-still", "off"], ["--motion-comp", "off"], ["--camera", "1"],
                                   ["--size", "1280x720"], ["--fps", "30"], ["--vcam-device", "/dev/video10"]])
def test_live_options_with_image_are_refused(small_ckpt_args, still, tmp_path, extra):
    error = one_error_line(run_cli("--image", still, "--output", tmp_path / "o.png", *extra, *small_ckpt_args))
    assert extra[0] in error and "--image" in error, error


def test_photo_mode_prints_the_output_path_once(small_ckpt_args, still, tmp_path):
    out = tmp_path / "o.png"
    r = run_cli("--image", still, "--output", out, *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(out)]
    assert str(out) not in r.stderr


def test_batch_log_lines_do_not_break_the_progress_bar(small_ckpt_args, tmp_path):
    """tqdm's logging redirection: each log line is whole, on its own line, never glued to the bar."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "d"):
        cv2.imwrite(str(folder / f"{name}.png"), np.full((40, 40, 3), 80, np.uint8))
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    # the bar is drawn on a terminal only
    code, stderr = run_on_terminal("--image", folder, "--output", tmp_path / "out", *small_ckpt_args)
    assert code == 1
    assert "img/s]" in stderr, stderr
    assert "\nERROR: skipped c.png" in stderr.replace("\r", "\n"), stderr
    # nothing is written right after the bar (which ends in "img/s]" and is redrawn with "\r")
    assert not re.search(r"img/s\][^\r\n]", stderr), stderr
    r = run_cli("--image", folder, "--output", tmp_path / "out2", *small_ckpt_args)
    assert r.returncode == 1 and "skipped c.png" in r.stderr
    assert "img/s" not in r.stderr, r.stderr  # into a pipe or a log file: no bar redrawn over and over


def run_on_terminal(*args):
    """Run the CLI with stderr on a pseudo-terminal; its exit code and what it wrote there."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # as a terminal window has
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=slave, env={**os.environ, "MODNET_OFFLINE": "1"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def test_help_overlay_says_each_thing_once():
    from realtime.overlay import help_lines

    for line in help_lines():
        label, text = line.split(maxsplit=1)
        assert "(" not in text, line  # no "(space)" or "(q or Esc)" repeating the keys
    assert any(line.startswith("space") and "pause / resume" in line for line in help_lines())


# --- exit codes -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["photo", "live"])
@pytest.mark.parametrize("kind", ["folder", "text", "picture"])
def test_wrong_weights_are_bad_input(still, tmp_path, kind, mode):
    if kind == "folder":
        weights = tmp_path / "models"
        weights.mkdir()
    elif kind == "text":
        weights = tmp_path / "notes.txt"
        weights.write_text("hello")
    else:
        weights = still
    if mode == "photo":
        r = run_cli("--image", still, "--output", tmp_path / "o.png", "--weights", weights)
    else:
        r = run_cli("--source", still, "--no-window", "--max-frames", "1", "--weights", weights,
                    "--weights-dir", tmp_path / "cache")
    one_error_line(r, code=2)


def test_one_table_maps_errors_to_exit_codes():
    from app.cli import EXIT_CODES, exit_code_for
    from compositing import BackgroundError
    from matting import ModelUnavailable, WeightsError
    from realtime import SinkError

    assert exit_code_for(BackgroundError("x")) == 2
    assert exit_code_for(WeightsError("x")) == 2
    assert exit_code_for(ModelUnavailable("x")) == 1
    assert exit_code_for(SinkError("x")) == 1
    assert exit_code_for(RuntimeError("a bug")) is None  # bugs keep their traceback
    kinds = [kind for kind, _ in EXIT_CODES]
    for i, kind in enumerate(kinds):  # a subclass listed after its base would never match
        assert not any(issubclass(kind, base) for base in kinds[:i]), kind


def tiny_clip(path, frames):
    """An MJPEG clip of ``frames`` flat grey 64x48 frames at 10 fps."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


def test_record_onto_the_source_is_refused(small_ckpt_args, tmp_path):
    clip = tiny_clip(tmp_path / "clip.avi", 5)
    before = clip.read_bytes()
    error = one_error_line(run_cli("--source", clip, "--every-frame", "--record", clip, "--no-window",
                                   *small_ckpt_args))
    assert "would be overwritten" in error
    assert clip.read_bytes() == before


def test_record_onto_the_background_video_is_refused(small_ckpt_args, still, tmp_path):
    clip = tiny_clip(tmp_path / "beach.avi", 5)
    before = clip.read_bytes()
    error = one_error_line(run_cli("--source", still, "--background", clip, "--record", clip, "--no-window",
                                   "--max-frames", "2", "--overwrite", *small_ckpt_args))
    assert "would be overwritten" in error and "--background" in error
    assert clip.read_bytes() == before


@pytest.mark.parametrize("extra, fragment", [([], "is a picture"), (["--loop"], "never end")])
def test_every_frame_conversions_that_would_never_end_are_refused(small_ckpt_args, still, tmp_path, extra, fragment):
    """A picture is a source that never ends, and so is a looped video: an unpaced conversion of
    either would write frames until the disk is full."""
    source = still
    if extra:
        source = tiny_clip(tmp_path / "clip.avi", 3)
    out = tmp_path / "out.mp4"
    r = run_cli("--source", source, "--every-frame", "--record", out, "--no-window", *extra, *small_ckpt_args)
    assert fragment in one_error_line(r) and not out.exists()
    if extra:  # with a limit it is a conversion like any other
        r = run_cli("--source", source, "--every-frame", "--record", out, "--no-window", "--max-frames", "7",
                    *extra, *small_ckpt_args)
        assert r.returncode == 0, r.stderr
        assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 7


def test_photo_output_onto_the_background_picture_is_refused(small_ckpt_args, still, tmp_path):
    bg = tmp_path / "beach.jpg"
    cv2.imwrite(str(bg), np.full((64, 96, 3), 200, np.uint8))
    before = bg.read_bytes()
    error = one_error_line(run_cli("--image", still, "--background", bg, "--output", bg, *small_ckpt_args))
    assert "refusing to overwrite" in error
    assert bg.read_bytes() == before


def test_live_options_in_a_config_file_do_not_stop_photo_mode(small_ckpt_args, still, tmp_path):
    cfg = tmp_path / "everyday.toml"
    cfg.write_text("vcam = true\nloop = true\nverbose = true\nmatte_every = 6\nskip_still = false\n"
                   "motion_comp = false\ninference_share = 0.4\ncamera = \"1\"\nsize = \"1280x720\"\n")
    out = tmp_path / "o.png"
    r = run_cli("--config", cfg, "--image", still, "--output", out, *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert out.exists() and "DEBUG:" in r.stderr  # verbose from the file works too


@pytest.mark.parametrize("ext", [".mov", ".mkv"])
def test_record_to_other_containers(small_ckpt_args, still, tmp_path, ext):
    out = tmp_path / f"out{ext}"
    r = run_cli("--source", still, "--no-window", "--max-frames", "3", "--record", out, *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) >= 1


@pytest.mark.parametrize("target", ["weights", "video", "folder"])
def test_export_never_replaces_a_user_file(reference_ckpt, tmp_path, target):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(reference_ckpt.read_bytes())
    video = tmp_path / "holiday.mp4"
    video.write_bytes(b"not really a video, but the user's")
    folder = tmp_path / "models"
    folder.mkdir()
    path = {"weights": ckpt, "video": video, "folder": folder}[target]
    before = path.read_bytes() if path.is_file() else None
    error = one_error_line(run_cli("--export-onnx", path, "--weights", ckpt))
    assert str(path.name) in error
    assert (path.read_bytes() if path.is_file() else None) == before
    assert not list(tmp_path.glob(".*.part"))


def test_selfie_model_given_to_modnet_says_what_to_do(still, tmp_path):
    model = tmp_path / "selfie.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    error = one_error_line(run_cli("--image", still, "--output", tmp_path / "o.png", "--weights", model))
    assert "--model selfie" in error and "weights_only" not in error


def test_bad_option_values_are_one_line_without_the_usage_block():
    r = run_cli("--inference-size", "abc")
    error = one_error_line(r)
    assert "--inference-size" in error and "usage:" not in r.stderr


def test_mistakes_a_newcomer_makes_get_messages_that_say_what_to_do(small_ckpt_args, still, tmp_path):
    backgrounds = tmp_path / "bgs"
    backgrounds.mkdir()
    cv2.imwrite(str(backgrounds / "03_soft_office.jpg"), np.full((36, 64, 3), 150, np.uint8))
    error = one_error_line(run_cli("--image", still, "--output", tmp_path / "o.png", "--background", "03_soft_ofice",
                                   "--backgrounds-dir", backgrounds, *small_ckpt_args))
    assert "did you mean 03_soft_office?" in error
    folder = tmp_path / "clips"
    folder.mkdir()
    assert "is a folder" in one_error_line(run_cli("--source", folder, "--no-window", *small_ckpt_args))
    assert "is a folder" in one_error_line(run_cli("--source", still, "--record", folder, "--no-window",
                                                   *small_ckpt_args))


def test_a_video_given_as_a_photo_and_an_onnx_given_for_export_say_what_to_use(reference_ckpt, tmp_path):
    clip = tiny_clip(tmp_path / "holiday.avi", 3)
    error = one_error_line(run_cli("--image", clip, "--output", tmp_path / "o.png", "--weights", reference_ckpt))
    assert "is a video" in error and "--source" in error
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07\x12\x07pytorch" + bytes(64))  # an ONNX protobuf's first bytes
    error = one_error_line(run_cli("--export-onnx", tmp_path / "out.onnx", "--weights", model))
    assert "an ONNX model, not a checkpoint" in error


# --- options that would be ignored ---------------------------------------------------

@pytest.mark.parametrize("args,text", [
    (["--device", "tpu"], "--device: unknown device 'tpu'"),
    (["--device", "cuda:7x"], "unknown device"),
    (["--model", "selfie", "--device", "cuda"], "the selfie model runs on the CPU"),
    (["--source", "clip.mp4", "--size", "640x360"], "--size sets up a webcam, but --source clip.mp4 plays at its own"),
    (["--source", "clip.mp4", "--camera", "1"], "--camera sets up a webcam"),
    (["--source", "clip.mp4", "--fps", "5", "--fourcc", "MJPG"], "--fps, --fourcc set up a webcam"),
    (["--source", "me.jpg", "--size", "640x360"], "plays a picture"),
    (["--record", "out/.mp4"], "give the file a name before .mp4"),  # it said: use a name ending in .mp4
    (["--camera", "99999999999999999999"], "--camera: no camera has index"),  # a traceback from OpenCV
])
def test_options_the_run_would_ignore_are_refused(args, text):
    """They ran with the option silently ignored (the selfie model on the CPU whatever --device said,
    a video at its own size whatever --size said)."""
    from app.config import settings_from_args
    from app.errors import UsageError

    with pytest.raises(UsageError, match=re.escape(text)):
        settings_from_args(args)


@pytest.mark.parametrize("camera", ["²", "１"])
def test_a_camera_of_other_digits_is_a_device_name_not_a_crash(camera):
    """``"²".isdigit()`` is true and int() refuses it: ``--camera ²`` ended in a ValueError traceback."""
    from realtime.sources import CameraSource, SourceError

    with pytest.raises(SourceError, match=f"cannot open camera {camera}"):
        CameraSource(camera).open()


def test_options_that_do_apply_are_kept():
    from app.config import settings_from_args

    assert settings_from_args(["--source", "me.jpg", "--fps", "5"]).fps == 5  # a picture is shown at --fps
    assert settings_from_args(["--web", "--source", "clip.mp4", "--size", "640x360"]).size == (640, 360)  # Live tab
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps", "CUDA"):
        assert settings_from_args(["--device", device]).device == device
    assert settings_from_args(["--model", "selfie", "--device", "cpu"]).device == "cpu"


def test_a_config_files_webcam_settings_do_not_stop_a_source(tmp_path):
    """One config file for the webcam (size, fps, camera) still lets --source play a clip: its webcam
    settings are left out, as its live settings are for photos; the same flags typed are refused."""
    from app.config import settings_from_args
    from app.errors import UsageError

    cfg = tmp_path / "webcam.toml"
    cfg.write_text('camera = 1\nsize = "1280x720"\nfps = 30\nfourcc = "MJPG"\n')
    s = settings_from_args(["--config", str(cfg), "--source", "clip.mp4"])
    assert (s.camera, s.size, s.fps, s.fourcc) == ("0", None, None, None)
    assert settings_from_args(["--config", str(cfg)]).size == (1280, 720)
    with pytest.raises(UsageError, match="--size sets up a webcam"):
        settings_from_args(["--config", str(cfg), "--source", "clip.mp4", "--size", "640x360"])


def test_a_config_files_real_time_settings_do_not_stop_a_conversion(tmp_path):
    """A config file for live runs (a matte-rate cap, the virtual camera, async) still lets a
    --every-frame conversion run: it said "--inference-share is for live mode", a flag nobody typed."""
    from app.config import settings_from_args
    from app.errors import UsageError

    cfg = tmp_path / "live.toml"
    cfg.write_text('inference_share = 0.35\nmax_matte_rate = 2.5\nvcam = true\nmode = "async"\n'
                   'vcam_fps = 30\nmatte_every = 4\n')
    s = settings_from_args(["--config", str(cfg), "--source", "clip.mp4", "--every-frame"])
    assert (s.inference_share, s.max_matte_rate, s.vcam, s.vcam_fps, s.mode) == (None, None, False, None, "sync")
    assert s.matte_every == 4  # a conversion's own setting is kept
    live = settings_from_args(["--config", str(cfg), "--source", "clip.mp4"])
    assert (live.inference_share, live.max_matte_rate, live.vcam) == (0.35, 2.5, True)
    with pytest.raises(UsageError, match="--max-matte-rate is for live mode"):
        settings_from_args(["--config", str(cfg), "--source", "clip.mp4", "--every-frame", "--max-matte-rate", "2"])
    both = tmp_path / "both.toml"  # a file that contradicts itself is refused, not quietly half-used
    both.write_text("every_frame = true\nvcam = true\nmode = \"sync\"\n")
    with pytest.raises(UsageError, match="--vcam needs a real-time run"):
        settings_from_args(["--config", str(both), "--source", "clip.mp4"])


@pytest.mark.parametrize("option", [["--pause-unwatched", "off"], ["--stats"], ["--stats-interval", "2"]])
def test_live_only_reporting_and_pausing_are_refused_with_a_photo(option):
    from app.config import settings_from_args
    from app.errors import UsageError

    with pytest.raises(UsageError, match=f"{option[0]} cannot be used with --image"):
        settings_from_args(["--image", "a.jpg", "--output", "b.png", *option])


def test_a_broken_video_is_one_line_without_ffmpegs_own_messages(tmp_path):
    """FFmpeg printed "[mov,mp4,...] moov atom not found" above the one-line error."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    r = run_cli("--source", broken, "--no-window", "--max-frames", "1")
    assert one_error_line(r).startswith(f"error: cannot open video {broken}")
    assert "moov" not in r.stderr and "@ 0x" not in r.stderr, r.stderr


def test_a_truncated_png_is_one_line_without_libpngs_own(tmp_path, small_ckpt_args):
    """libpng printed "libpng error: PNG input buffer is incomplete" above the one-line error; a
    whole PNG with bytes appended after its end still reads."""
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.tobytes()[: len(png) // 2])
    r = run_cli("--image", cut, "--output", tmp_path / "o.png", *small_ckpt_args)
    assert one_error_line(r) == f"error: not a readable image (unknown format, or truncated): {cut}"
    assert "libpng" not in r.stderr, r.stderr
    from compositing import read_image

    extra = tmp_path / "extra.png"
    extra.write_bytes(png.tobytes() + b"appended by some program" * 100_000)
    assert read_image(extra).shape == (120, 160, 3)


def test_ctrl_c_while_the_libraries_load_is_quiet(tmp_path):
    """Ctrl-C while torch and OpenCV still load printed a 30-line traceback. (The child is held
    inside its import of OpenCV until the Ctrl-C comes: a fixed delay raced a faster start.)"""
    import signal
    import time

    marker = tmp_path / "loading"
    (tmp_path / "sitecustomize.py").write_text(
        "import pathlib, sys, time\n"
        "class Slow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'cv2':\n"
        "            sys.meta_path.remove(self)\n"
        f"            pathlib.Path({str(marker)!r}).touch()\n"
        "            time.sleep(60)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Slow())\n")
    env = {**os.environ, "MODNET_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # the child gets Ctrl-C's default
    try:
        proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), "--no-window"], stderr=subprocess.PIPE,
                                text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the child never started importing OpenCV"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def test_a_bad_background_is_refused_before_the_source_opens(still):
    """The camera was opened (its light on) before a bad --background was refused."""
    for value in ("blur:99999999999999999999", "nosuchthing"):
        r = run_cli("--source", still, "--no-window", "--max-frames", "1", "--background", value)
        assert ("blur strength" if "blur" in value else "unknown background") in one_error_line(r)
        assert "source:" not in r.stderr, r.stderr


# --- what a conversion and config trial found ----------------------------------------

def _clip(path, frames, fps=24.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), (20 * i) % 256, np.uint8))
    writer.release()
    return path


def test_a_recording_never_replaces_the_background_video_named_from_the_folder(small_ckpt_args, tmp_path):
    """The check compared --record with the text of --background only: a background named from
    backgrounds/ (or given with ~) was overwritten, even as it played."""
    folder = tmp_path / "bgs"
    folder.mkdir()
    background = _clip(folder / "clip.mp4", 10)
    before = background.read_bytes()
    source = _clip(tmp_path / "in.mp4", 4)
    for value, home in (("clip", None), ("~/clip.mp4", folder)):
        r = subprocess.run([sys.executable, str(ROOT / "live.py"), "--source", str(source), "--every-frame",
                            "--no-window", "--backgrounds-dir", str(folder), "--background", value, "--record",
                            str(background), "--overwrite", *map(str, small_ckpt_args)], capture_output=True,
                           text=True, timeout=300,
                           env={**os.environ, "MODNET_OFFLINE": "1", **({"HOME": str(home)} if home else {})})
        assert "is the --background video" in one_error_line(r), value
        assert background.read_bytes() == before


@pytest.mark.parametrize("extra", [["--image", "in.jpg", "--output", "o.png"], ["--web"],
                                   ["--source", "in.mp4", "--every-frame", "--record", "r.mp4", "--no-window"]])
def test_export_onnx_with_other_work_is_refused_not_silently_dropped(small_ckpt_args, tmp_path, extra):
    r = run_cli("--export-onnx", tmp_path / "m.onnx", *extra, *small_ckpt_args, cwd=tmp_path)
    assert "--export-onnx writes the ONNX file and exits" in one_error_line(r)
    assert not (tmp_path / "m.onnx").exists()


def test_a_conversions_duration_is_the_files_own_time(small_ckpt_args, tmp_path):
    """--every-frame --duration counted the clock: 16 frames of a 24-fps file for 0.5 s on one run,
    1 with a bigger model, 162 for --loop --duration 3."""
    source = _clip(tmp_path / "in.mp4", 48)
    for options, frames in ((["--duration", "0.5"], 12), (["--loop", "--duration", "3"], 72)):
        out = tmp_path / f"out{frames}.mp4"
        r = run_cli("--source", source, "--every-frame", "--no-window", "--record", out, *options, *small_ckpt_args)
        assert r.returncode == 0, r.stderr
        assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == frames


@pytest.mark.parametrize("text,words,suffix", [
    # both spellings as written (it said "inference_size ... sets inference_size a second time")
    ("inference-size = 256\ninference_size = 320\n", "inference_size and inference-size in", ".toml"),
    ("no_window = true\nwindow = true\n", "window and no_window in", ".toml"),
    ('{"background": "blue", "background": "red"}', "'background' is given twice", ".json"),  # JSON allows it
])
def test_a_setting_given_twice_in_a_config_file_is_refused(tmp_path, text, words, suffix):
    cfg = tmp_path / f"c{suffix}"
    cfg.write_text(text)
    assert words in one_error_line(run_cli("--config", cfg, "--image", "x.jpg"))


def test_config_files_from_notepad_folders_and_huge_files(tmp_path):
    cfg = tmp_path / "bom.toml"
    cfg.write_bytes(b"\xef\xbb\xbfno_window = true\n")  # a byte-order mark, as Notepad saves
    from app.config import settings_from_args

    assert settings_from_args(["--config", str(cfg)]).window is False
    assert "is a folder" in one_error_line(run_cli("--config", tmp_path))
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 2_000_000 + "\n")
    assert "a settings file is a few lines" in one_error_line(run_cli("--config", big))


def test_vcam_with_every_frame_is_refused_before_a_model_loads(tmp_path):
    source = _clip(tmp_path / "in.mp4", 2)
    assert "--vcam needs a real-time run" in one_error_line(run_cli("--source", source, "--every-frame", "--vcam",
                                                                   "--no-window"))


def test_verbose_shows_the_programs_own_messages_not_opencvs_per_frame_lines(small_ckpt_args, tmp_path):
    """-v set OpenCV's DEBUG level: two lines per decoded frame (356 of 365 lines in a 20-s run)."""
    source = _clip(tmp_path / "in.mp4", 12)
    r = run_cli("--source", source, "--every-frame", "--no-window", "-v", *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert "DEBUG: " in r.stderr  # the program's own debug lines
    output = r.stdout + r.stderr  # (OpenCV writes its log to stdout)
    assert "retrieveFrame" not in output and "[DEBUG:" not in output, output[-2000:]


def test_limits_are_shown_in_full():
    from app.config import Settings
    from app.errors import UsageError

    with pytest.raises(UsageError, match=r"--max-frames must be at most 1000000000, got 99999999999"):
        Settings(max_frames=99999999999).validate()


def test_a_virtual_camera_backend_this_system_lacks_is_one_line(small_ckpt_args, still):
    """pyvirtualcam raises a bare KeyError for a backend this system has not registered, and its
    half-made camera then prints a traceback when collected ("Exception ignored in ... __del__").
    Without --vcam the backend is not used, and not checked (one config file serves every mode)."""
    pytest.importorskip("pyvirtualcam")
    r = run_cli("--source", still, "--no-window", "--max-frames", "1", "--vcam-backend", "foo", *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    code = ("import sys; from realtime.sinks import SinkError, VirtualCameraSink, vcam_backends\n"
            "missing = next(name for name in ('obs', 'v4l2loopback') if name not in vcam_backends())\n"
            "try:\n    VirtualCameraSink((64, 48), 30, backend=missing)\n"
            "except SinkError as exc:\n    print(exc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0 and "virtual camera on this system (it has" in r.stdout, (r.stdout, r.stderr)
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr
