"""Odd files a user may hand over: names OpenCV cannot open, unreadable or special files, TIFF
orientation, transparency, extreme shapes and frame rates, a disk that fills up, unusable folders."""

import ctypes
import logging
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import MODELS, PORTRAIT, ROOT, need
from app.photo_mode import cut_out, list_images
from compositing import Compositor, MediaError, read_image
from compositing.backgrounds import TransparentBackground
from compositing.media import sane_fps
from matting import MattingEngine
from realtime.sinks import RecorderSink

BAD_NAME = os.fsdecode(b"clip-\xe9")  # Latin-1 bytes: not UTF-8 (Python keeps them as a surrogate)


def run_cli(*args, preexec_fn=None):
    return subprocess.run([sys.executable, str(ROOT / "live.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MODNET_OFFLINE": "1"}, preexec_fn=preexec_fn)


@pytest.fixture
def small_args(reference_ckpt):
    return ["--weights", str(reference_ckpt), "--inference-size", "64"]


def clip(path, frames=4, size=(64, 48), fps=10.0):
    made = path.with_name("made.mp4")  # (OpenCV itself cannot take every name: renamed after)
    writer = cv2.VideoWriter(str(made), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (40 + 30 * i) % 256, np.uint8))
    writer.release()
    os.replace(made, path)
    return path


def one_line_error(r, code=2):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    return r.stderr.strip().splitlines()[-1]


# ------------------------------------------------------------------ names OpenCV cannot open
def test_video_names_that_are_not_utf8_are_refused_not_a_crash(small_args, tmp_path):
    """OpenCV's video functions crashed the process (SIGSEGV) on such a name."""
    bad = tmp_path / (BAD_NAME + ".mp4")
    clip(bad)
    r = run_cli("--source", bad, "--every-frame", "--record", tmp_path / "out.mp4", "--no-window", *small_args)
    assert "not valid UTF-8" in one_line_error(r)
    good = clip(tmp_path / "good.mp4")
    record = tmp_path / (BAD_NAME + "-out.mp4")
    r = run_cli("--source", good, "--every-frame", "--record", record, "--no-window", *small_args)
    assert "not valid UTF-8" in one_line_error(r)
    assert not record.exists()
    r = run_cli("--image", need_picture(tmp_path), "--background", bad, "--output", tmp_path / "x.png", *small_args)
    assert "not valid UTF-8" in one_line_error(r)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux names the error (ENAMETOOLONG)")
def test_names_too_long_for_the_system_are_one_line_errors(small_args, tmp_path):
    """A 300-character name (over the 255-byte limit of a file name) gave a traceback and exit 1
    from --source, --background, --record, --weights, --backgrounds-dir and --config."""
    long = tmp_path / ("a" * 300)
    good = clip(tmp_path / "good.mp4")
    deep = tmp_path.joinpath(*["b" * 200] * 25) / "x.mp4"  # each part allowed, the whole path not
    cases = [("--source", ["--source", f"{long}.mp4", "--every-frame", "--record", tmp_path / "o.mp4"]),
             ("--background", ["--source", good, "--background", f"{long}.jpg", "--every-frame",
                               "--record", tmp_path / "o.mp4"]),
             ("--record", ["--source", good, "--every-frame", "--record", deep]),
             ("--weights", ["--source", good, "--every-frame", "--record", tmp_path / "o.mp4"]),
             ("--backgrounds-dir", ["--source", good, "--every-frame", "--record", tmp_path / "o.mp4",
                                    "--backgrounds-dir", long]),
             ("config file", ["--config", f"{long}.toml", "--source", good])]
    for flag, args in cases:
        later = ["--weights", f"{long}.onnx"] if flag == "--weights" else []  # (after small_args' own)
        line = one_line_error(run_cli(*args, "--no-window", *small_args, *later))
        assert line.startswith(f"error: {flag}") and "too long" in line and len(line) < 200, (flag, line)
    assert not (tmp_path / "o.mp4").exists()
    # a stream's URL is no file name, however long (a signed one): it is tried
    url = "http://127.0.0.1:9/" + "a" * 200 + "/" + "b" * 4000
    line = one_line_error(run_cli("--source", url, "--no-window", "--duration", "1", *small_args))
    assert "too long" not in line and "cannot open" in line, line


def test_a_background_folder_video_with_such_a_name_is_skipped(small_args, tmp_path):
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    clip(folder / (BAD_NAME + ".mp4"))
    cv2.imwrite(str(folder / "plain.png"), np.full((48, 64, 3), 200, np.uint8))
    r = run_cli("--source", clip(tmp_path / "in.mp4"), "--every-frame", "--record", tmp_path / "out.mp4",
                "--no-window", "--backgrounds-dir", folder, *small_args)
    assert r.returncode == 0, r.stderr
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 4


def need_picture(tmp_path):
    path = tmp_path / "person.png"
    cv2.imwrite(str(path), np.full((48, 64, 3), 120, np.uint8))
    return path


# ------------------------------------------------------------------ a disk that fills up
def _small_file_limit():  # (in the child) writes past 60 kB fail with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


def _tiny_file_limit():  # (in the child) writes past 2 kB fail with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000, 2_000))


@pytest.mark.parametrize("live", [False, True])
def test_a_recording_the_disk_could_not_hold_is_an_error(small_args, tmp_path, live):
    """OpenCV's writer reports no write errors: the run said "recording saved" and exited 0, the
    file unplayable (no index)."""
    source = tmp_path / "in.mp4"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    rng = np.random.default_rng(0)
    for _ in range(12):  # noise: each frame takes tens of kB, so the limit is reached
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out.mp4"
    mode = ["--loop", "--duration", "2"] if live else ["--every-frame"]
    r = run_cli("--source", source, *mode, "--record", out, "--no-window", *small_args,
                preexec_fn=_small_file_limit)
    assert "incomplete" in one_line_error(r, code=1)
    assert "recording saved" not in r.stderr
    assert r.stderr.count("incomplete") == 1, r.stderr  # said once (it was logged, then printed again)
    assert "0 of " in r.stderr and "out.mp4 is not kept" in r.stderr  # nothing of it plays: not left behind
    assert not out.exists()


@pytest.mark.parametrize("id_photo", [False, True])
def test_a_photo_the_disk_could_not_hold_is_a_failed_run(small_args, tmp_path, id_photo):
    """Exit 1, as for a recording or a batch the disk could not hold (it was 2, "bad input")."""
    picture = tmp_path / "person.png"
    cv2.imwrite(str(picture), np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    out = tmp_path / ("id.jpg" if id_photo else "cut.png")
    extra = ["--id-size", "passport", "--face-weights", str(need(MODELS / "face_detection_short_range.onnx"))] \
        if id_photo else []
    if id_photo:
        picture = need(PORTRAIT)
    r = run_cli("--image", picture, "--output", out, *extra, *small_args, preexec_fn=_tiny_file_limit)
    assert "cannot write" in one_line_error(r, code=1)


def test_a_whole_recording_still_passes_its_check(tmp_path):
    sink = RecorderSink(str(tmp_path / "ok.mp4"), (64, 48), 10.0, realtime=False)
    for i in range(5):
        sink.send(np.full((48, 64, 3), 30 * i, np.uint8), i / 10)
    sink.close()  # no error
    assert cv2.VideoCapture(str(tmp_path / "ok.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 5


# ------------------------------------------------------------------ unreadable and special files
def _without_root_file_access():
    """(In the child, as root) drop the capabilities that let root read any file (as ``setpriv
    --bounding-set -dac_override,-dac_read_search`` does): file permissions then apply."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_pictures_without_read_permission_are_reported_and_a_batch_goes_on(reference_ckpt):
    """A traceback before; a folder batch stopped at the first such picture."""
    folder = Path(tempfile.mkdtemp(prefix="noread-"))  # (pytest's own folders are closed to other users)
    try:
        os.chmod(folder, 0o777)
        pictures = folder / "in"
        pictures.mkdir()
        os.chmod(pictures, 0o755)
        for name, value in (("a.png", 60), ("b.png", 120), ("c.png", 180)):
            cv2.imwrite(str(pictures / name), np.full((48, 64, 3), value, np.uint8))
        os.chmod(pictures / "b.png", 0)
        child = _without_root_file_access if os.geteuid() == 0 else None  # root reads anything
        r = run_cli("--image", pictures / "b.png", "--output", folder / "b-out.png", "--weights", reference_ckpt,
                    "--inference-size", "64", preexec_fn=child)
        assert one_line_error(r) == f"error: cannot read {pictures / 'b.png'}: permission denied"
        r = run_cli("--image", pictures, "--output", folder / "out", "--weights", reference_ckpt,
                    "--inference-size", "64", preexec_fn=child)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert "1 of 3 pictures failed: b.png: cannot read" in r.stderr
        assert sorted(p.name for p in (folder / "out").iterdir()) == ["a.png", "c.png"]
    finally:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_a_pipe_is_not_taken_for_an_empty_picture(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(MediaError, match="not a regular file"):
        read_image(fifo)  # (and no hang)


# ------------------------------------------------------------------ orientation, transparency, shapes
def _oriented(image_bgr, orientation, path):
    picture = Image.fromarray(image_bgr[:, :, ::-1])
    exif = picture.getexif()
    exif[0x0112] = orientation
    picture.save(path, exif=exif)
    return path


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_tiff_orientation_is_applied_once(tmp_path, orientation):
    """OpenCV's TIFF decoder turns the picture itself; it was turned a second time."""
    image = np.zeros((40, 90, 3), np.uint8)
    image[:10, :20] = 255  # a mark in one corner
    as_png = read_image(_oriented(image, orientation, tmp_path / "o.png"))
    as_tiff = read_image(_oriented(image, orientation, tmp_path / "o.tiff"))
    assert as_tiff.shape == as_png.shape == ((90, 40, 3) if orientation in (6, 8) else (40, 90, 3))
    assert np.abs(as_tiff.astype(int) - as_png).max() <= 2


class _WholeFrame(MattingEngine):
    """Everything is the person: what the output keeps transparent comes from the picture itself."""

    name = "whole"

    def output_shape(self, frame_hw):
        return (24, 32)

    def infer(self, frame):
        return np.ones((24, 32), np.float32)


def test_what_a_picture_made_transparent_stays_transparent(tmp_path):
    image = np.full((48, 64, 4), 150, np.uint8)
    image[:, :16, 3] = 255
    image[:, 32:, 3] = 0     # the right half invisible
    image[:, 16:32, 3] = 128  # a half-transparent band
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), image)
    picture, opacity = read_image(path, with_opacity=True)
    assert picture.shape == (48, 64, 3)
    result, _ = cut_out(_WholeFrame(), picture, TransparentBackground(), Compositor(), opacity)
    assert result.shape == (48, 64, 4)
    assert result[:, 32:, 3].max() == 0
    assert np.abs(result[:, 16:32, 3].astype(int) - 128).max() <= 1
    assert result[:, :16, 3].min() == 255
    opaque = tmp_path / "opaque.png"
    cv2.imwrite(str(opaque), np.full((8, 8, 4), 255, np.uint8))
    assert read_image(opaque, with_opacity=True)[1] is None  # an alpha channel that hides nothing


def test_a_rotated_pictures_size_is_told_as_it_is_seen(tmp_path, caplog):
    path = _oriented(np.zeros((60, 200, 3), np.uint8), 6, tmp_path / "wide.jpg")
    with caplog.at_level(logging.INFO):
        assert read_image(path, max_side=100).shape == (100, 30, 3)
    assert "wide.jpg is 60x200" in caplog.text


def test_folder_batches_take_what_a_single_picture_takes(tmp_path):
    for name in ("a.gif", "b.avif", "c.png", "d.txt", "e.jfif", "f.JPE", "g.apng"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.gif", "b.avif", "c.png", "e.jfif", "f.JPE", "g.apng"]


def test_a_tiff_cut_short_is_one_line_without_pillows_own_warning(small_args, tmp_path):
    from PIL import Image

    whole = tmp_path / "whole.tif"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(
        whole, compression="tiff_lzw")
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    r = run_cli("--image", cut, "--output", tmp_path / "out.png", *small_args)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: not a readable image (unknown format, or truncated): {cut}"], r.stderr


# ------------------------------------------------------------------ frame rates and sizes
def test_slow_and_fast_frame_rates_are_kept():
    assert sane_fps(0.5) == 0.5 and sane_fps(1000) == 1000.0  # a time-lapse, a slow-motion clip
    assert sane_fps(0) == 30.0 and sane_fps(float("nan")) == 30.0 and sane_fps(90000) == 30.0


def test_a_time_lapse_is_converted_at_its_own_rate(small_args, tmp_path):
    source = clip(tmp_path / "slow.mp4", frames=3, fps=0.5)
    out = tmp_path / "out.mp4"
    r = run_cli("--source", source, "--every-frame", "--record", out, "--no-window", *small_args)
    assert r.returncode == 0, r.stderr
    result = cv2.VideoCapture(str(out))
    assert result.get(cv2.CAP_PROP_FPS) == pytest.approx(0.5) and result.get(cv2.CAP_PROP_FRAME_COUNT) == 3


def test_one_pixel_frames_are_recorded_stretched_and_said_so(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        sink = RecorderSink(str(tmp_path / "dot.mp4"), (1, 1), 10.0, realtime=False)
    assert "stretched" in caplog.text and "lose" not in caplog.text
    for value in (50, 200):
        sink.send(np.full((1, 1, 3), value, np.uint8), 0.0)
    sink.close()
    result = cv2.VideoCapture(str(tmp_path / "dot.mp4"))
    assert result.get(cv2.CAP_PROP_FRAME_COUNT) == 2
    ok, frame = result.read()
    assert ok and frame.shape == (2, 2, 3)


# ------------------------------------------------------------------ unusable output folders, before any work
def test_output_folders_that_cannot_be_used_are_refused_up_front(small_args, tmp_path):
    picture = need_picture(tmp_path)
    missing = tmp_path / "missing"
    r = run_cli("--image", picture, "--output", f"{missing}/", *small_args, "-v")
    assert one_line_error(r) == f"error: --output {missing}/: that folder does not exist (create it, or give a file name)"
    assert "MODNet" not in r.stderr  # (refused before the model loaded)
    r = run_cli("--image", picture, "--output", missing / "x.png", *small_args, "-v")
    assert one_line_error(r) == f"error: output folder does not exist: {missing}"
    assert "MODNet" not in r.stderr


# ------------------------------------------------------------------ model files the user named
@pytest.mark.parametrize("content", [b"not a model\n", None])
def test_a_face_model_given_that_cannot_be_used_is_an_error(small_args, tmp_path, content):
    """It was a warning (exit 0): the ID photo was made without face detection, two people too."""
    face = tmp_path / "face.onnx"
    if content is None:  # another real model: the shared selfie segmenter, if there
        face.write_bytes(need(MODELS / "selfie_segmentation.onnx").read_bytes())
    else:
        face.write_bytes(content)
    out = tmp_path / "id.jpg"
    r = run_cli("--image", need_picture(tmp_path), "--id-size", "passport", "--output", out, "--face-weights", face,
                *small_args)
    assert str(face) in one_line_error(r)
    assert not out.exists()


def test_an_onnx_export_that_cannot_be_written_is_one_line(reference_ckpt, tmp_path, monkeypatch, capsys):
    import errno

    import matting.onnx_export
    from app.cli import main

    def full_disk(weights, output, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matting.onnx_export, "export_modnet_onnx", full_disk)
    assert main(["--export-onnx", str(tmp_path / "m.onnx"), "--weights", str(reference_ckpt)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == \
        f"error: cannot write {tmp_path / 'm.onnx'}: No space left on device"
    assert main(["--export-onnx", str(tmp_path / "missing" / "m.onnx"), "--weights", str(reference_ckpt)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_no_display_is_found_before_a_recording_file_is_made(tmp_path):
    """It failed after the model loaded, leaving an empty, unplayable file (or, with --overwrite, none
    of the old recording)."""
    out = tmp_path / "call.mp4"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, str(ROOT / "live.py"), "--source", str(clip(tmp_path / "in.mp4")),
                        "--record", str(out), "--weights", str(tmp_path / "never-loaded.ckpt")],
                       capture_output=True, text=True, timeout=120, env={**env, "MODNET_OFFLINE": "1"})
    assert "no display" in one_line_error(r, code=1)
    assert not out.exists()


def test_a_pipe_as_the_source_is_read_as_it_comes(small_args, tmp_path):
    """A named pipe fed by another program was refused as an empty video file."""
    made = tmp_path / "made.avi"
    writer = cv2.VideoWriter(str(made), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    fifo = tmp_path / "camera.pipe"
    os.mkfifo(fifo)
    feeder = subprocess.Popen(["sh", "-c", f'cat "{made}" > "{fifo}"'])
    try:
        r = run_cli("--source", fifo, "--every-frame", "--record", tmp_path / "out.mp4", "--no-window", *small_args)
    finally:
        feeder.kill()
        feeder.wait()
    assert r.returncode == 0, r.stderr
    assert cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 6


def test_more_threads_than_cores_are_warned_about(caplog):
    """--threads 64 on 2 cores took the output from 24 to 0.4 fps without a word."""
    from app.config import settings_from_args

    cores = os.cpu_count() or 1
    with caplog.at_level(logging.WARNING):
        settings_from_args(["--threads", str(cores)])
    assert "CPU cores" not in caplog.text
    with caplog.at_level(logging.WARNING):
        settings_from_args(["--threads", str(cores + 1)])
    assert f"more than this machine's {cores} CPU cores" in caplog.text


def test_a_recording_stopped_before_its_first_frame_leaves_no_file(tmp_path, caplog):
    """A SIGTERM while --web started logged "recording saved (0 frames)" beside an unplayable file."""
    out = tmp_path / "call.mp4"
    sink = RecorderSink(str(out), (64, 48), 10.0)
    assert out.exists()
    with caplog.at_level(logging.INFO):
        sink.close()
    assert not out.exists() and "saved" not in caplog.text and "nothing was recorded" in caplog.text


# ------------------------------------------------------------------ output read by a pipe that closes
def run_with_closed_output(*args):
    """Run the CLI with stdout and stderr on one pipe that is closed after the first line
    (``live.py ... 2>&1 | head -1``); the exit code."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "live.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "MODNET_OFFLINE": "1"})
    proc.stdout.readline()
    proc.stdout.close()
    return proc.wait(timeout=300)


def test_a_closed_pipe_does_not_end_the_run_or_cut_the_recording(small_args, tmp_path):
    """``--stats 2>&1 | head``: the first stats line after the pipe closed raised BrokenPipeError
    in the render loop; the run ended with exit 1 and the recording stopped part-way."""
    source = clip(tmp_path / "in.mp4", frames=60)
    out = tmp_path / "out.mp4"
    code = run_with_closed_output("--source", source, "--every-frame", "--record", out, "--no-window", "--stats",
                                  "--stats-interval", "0.01", "-v", *small_args)
    assert code == 0
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 60


def test_a_closed_pipe_does_not_stop_a_photo_batch(small_args, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir(), out.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((48, 64, 3), 60 + 40 * i, np.uint8))
    code = run_with_closed_output("--image", folder, "--output", out, "-v", *small_args)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "p2.png"]


def test_colours_hidden_under_transparency_do_not_change_the_cut_out(small_args, tmp_path):
    """Two pictures that look the same (what differs is under fully transparent pixels: black in
    one, noise in the other, as different programs store it) gave different mattes."""
    rng = np.random.default_rng(3)
    image = np.zeros((48, 64, 4), np.uint8)
    image[:, :, :3] = rng.integers(0, 256, (48, 64, 3))
    image[8:44, 12:40, 3] = 255  # what is shown: a block; the rest is transparent
    outputs = []
    for name, hidden in (("black", 0), ("white", 255)):
        variant = image.copy()
        variant[image[..., 3] == 0, :3] = hidden
        cv2.imwrite(str(tmp_path / f"{name}.png"), variant)
        r = run_cli("--image", tmp_path / f"{name}.png", "--output", tmp_path / f"{name}-out.png", *small_args)
        assert r.returncode == 0, r.stderr
        outputs.append(cv2.imread(str(tmp_path / f"{name}-out.png"), cv2.IMREAD_UNCHANGED))
    assert outputs[0][..., 3].max() > 0
    assert np.array_equal(outputs[0], outputs[1])  # the alpha, and the colours (decontaminated) too


def test_id_photos_and_the_studio_keep_a_pictures_transparency(tmp_path):
    """The ID-photo maker (command line, REST API, studio) dropped the alpha: a cut-out made
    elsewhere came back with the colours stored under its transparent pixels as part of the person."""
    from compositing import parse_color
    from idphoto import IdPhotoMaker, PhotoRequest
    from web import UploadFolder

    image = np.full((48, 64, 4), 150, np.uint8)
    image[:, :, :3] = (20, 200, 20)  # green, hidden on the right
    image[:, :32, 3] = 255
    image[:, 32:, 3] = 0
    ok, png = cv2.imencode(".png", image)
    uploads = UploadFolder()
    maker = IdPhotoMaker(_WholeFrame, compositor_factory=lambda engine: Compositor())
    try:
        picture = uploads.read_picture(png.tobytes(), "cut.png")
        assert picture.shape == (48, 64, 4)
        for request in (PhotoRequest(background="blue", format="png"), PhotoRequest(format="png")):
            out = maker.photo(picture, request).image
            if out.shape[2] == 4:  # transparent: the hidden half stays hidden
                assert out[:, 32:, 3].max() == 0 and out[:, :32, 3].min() == 255
            else:  # on blue: the hidden half is blue, not the green stored there
                blue = parse_color("blue")
                assert np.abs(out[:, 40:].astype(int) - blue).max() <= 2, (out[:, 40:].mean((0, 1)), blue)
                assert np.abs(out[:, :24].astype(int) - (20, 200, 20)).max() <= 2
        opaque = uploads.read_picture(cv2.imencode(".png", image[:, :, :3])[1].tobytes(), "flat.png")
        assert opaque.shape == (48, 64, 3)
    finally:
        maker.close()
        uploads.cleanup()
