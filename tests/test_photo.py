"""Photo mode end to end through the CLI: cut-outs, ID photos, odd inputs, batches."""

import os
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import MODELS, NIGHT_SKY, PORTRAIT, ROOT, TWO_PEOPLE, need
from app.cli import main
from compositing import read_image


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "live.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MODNET_OFFLINE": "1"})


def test_rgba_cutout_of_portrait(reference_ckpt, tmp_path):
    out = tmp_path / "cut.png"
    assert main(["--image", str(need(PORTRAIT)), "--weights", str(reference_ckpt), "--output", str(out)]) == 0
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (720, 1280, 4) and image.dtype == np.uint8
    assert image[:, :, 3].std() > 0  # a real alpha channel, not a constant


def test_id_photo_colour_background(reference_ckpt, tmp_path):
    """The ID photo is exactly alpha*photo + (1-alpha)*preset red, at full resolution."""
    common = ["--image", str(need(PORTRAIT)), "--weights", str(reference_ckpt), "--inference-size", "256",
              "--no-decontaminate"]
    out, cut = tmp_path / "id.png", tmp_path / "cut.png"
    assert main([*common, "--background", "red", "--output", str(out)]) == 0
    assert main([*common, "--output", str(cut)]) == 0
    image = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert image.shape == (720, 1280, 3)
    alpha = cv2.imread(str(cut), cv2.IMREAD_UNCHANGED)[:, :, 3:].astype(np.float64) / 255
    photo = cv2.imread(str(PORTRAIT)).astype(np.float64)
    expected = alpha * photo + (1 - alpha) * np.array([0, 0, 208.0])  # BGR of RGB (208, 0, 0)
    assert np.abs(image - expected).max() <= 1.5  # alpha was stored in 8 bits


def test_done_when_commands(reference_ckpt, tmp_path):
    """The issue's two commands on two_people.jpg, as a user runs them."""
    cut, idp = tmp_path / "cut.png", tmp_path / "id.jpg"
    r = run_cli("--image", need(TWO_PEOPLE), "--weights", reference_ckpt, "--output", cut)
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(cut), cv2.IMREAD_UNCHANGED).shape == (661, 1126, 4)
    r = run_cli("--image", TWO_PEOPLE, "--weights", reference_ckpt, "--background", "blue", "--output", idp)
    assert r.returncode == 0, r.stderr
    assert idp.read_bytes()[:2] == b"\xff\xd8"
    assert cv2.imread(str(idp), cv2.IMREAD_UNCHANGED).shape == (661, 1126, 3)


def test_no_weights_offline_message(tmp_path):
    empty = tmp_path / "weights"
    empty.mkdir()
    cv2.imwrite(str(tmp_path / "x.jpg"), np.zeros((32, 32, 3), np.uint8))
    r = run_cli("--image", tmp_path / "x.jpg", "--output", tmp_path / "y.png", "--weights-dir", empty)
    assert r.returncode == 1  # not the user's input: the default model could not be fetched
    assert "Traceback" not in r.stderr
    assert "modnet_photographic_portrait_matting.ckpt" in r.stderr and str(empty) in r.stderr
    assert "https://" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def _exif_jpeg(image, orientation):
    ok, enc = cv2.imencode(".jpg", image)
    data = enc.tobytes()
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + \
        struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\x00\x00\x00\x00"
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


def test_odd_inputs_are_read_as_bgr(tmp_path):
    base = np.zeros((40, 60, 3), np.uint8)
    base[:10, :20] = (0, 0, 255)  # a red block top-left
    cv2.imwrite(str(tmp_path / "gray.png"), cv2.cvtColor(base, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(tmp_path / "rgba.png"), cv2.cvtColor(base, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(tmp_path / "deep.png"), base.astype(np.uint16) * 257)
    (tmp_path / "rot.jpg").write_bytes(_exif_jpeg(base, 6))  # stored sideways, rotate 90° clockwise
    for name in ("gray.png", "rgba.png", "deep.png"):
        image = read_image(tmp_path / name)
        assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    deep = read_image(tmp_path / "deep.png")
    assert deep[0, 0, 2] == 255
    rotated = read_image(tmp_path / "rot.jpg")
    assert rotated.shape == (60, 40, 3)
    assert rotated[2, -3, 2] > 200  # the red block moved to the top-right


def test_odd_inputs_through_photo_mode(small_ckpt_args, tmp_path):
    img = np.full((70, 90), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "gray.png"), img)
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((70, 90, 3), 30000, np.uint16))
    (tmp_path / "rot.jpg").write_bytes(_exif_jpeg(np.full((70, 90, 3), 90, np.uint8), 8))
    for name, shape in [("gray.png", (70, 90)), ("deep.png", (70, 90)), ("rot.jpg", (90, 70))]:
        out = tmp_path / f"out_{name}.png"
        assert main(["--image", str(tmp_path / name), "--output", str(out), *small_ckpt_args]) == 0
        assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (*shape, 4)


@pytest.fixture
def small_ckpt_args(reference_ckpt):
    return ["--weights", str(reference_ckpt), "--inference-size", "64"]


def test_batch_folder_with_one_corrupt_file(small_ckpt_args, tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"p{i}.jpg"), np.full((64, 96, 3), 40 * i, np.uint8))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "notes.txt").write_text("ignored: not a picture")
    # an existing output for the corrupt file must survive untouched, even with --overwrite
    dst.mkdir()
    (dst / "broken.png").write_bytes(b"precious")
    code = main(["--image", str(src), "--output", str(dst), "--overwrite", *small_ckpt_args])
    assert code == 1  # reported as a failure...
    assert sorted(p.name for p in dst.iterdir()) == ["broken.png", "p0.png", "p1.png", "p2.png"]  # ...rest done
    assert (dst / "broken.png").read_bytes() == b"precious"
    assert not list(dst.glob("*.part"))


def test_a_folder_run_again_reports_its_one_broken_picture_as_the_first_run_did(small_ckpt_args, tmp_path, capsys):
    """Run again, a folder whose other pictures are done has only the broken one left: it was then
    reported as a single picture's error (exit 2) instead of as one failed picture of the folder."""
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "good.jpg"), np.full((64, 96, 3), 90, np.uint8))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for run in range(2):
        assert main(["--image", str(src), "--output", str(dst), *small_ckpt_args]) == 1, run
        assert "1 of " in capsys.readouterr().err
    # ID photos of a folder holding only the broken picture: a folder's failure too
    (src / "good.jpg").unlink()
    ids = tmp_path / "ids"
    assert main(["--image", str(src), "--output", str(ids), "--id-size", "passport", "--offline",
                 "--weights-dir", str(tmp_path / "none"), *small_ckpt_args]) == 1
    assert "1 of 1 pictures failed" in capsys.readouterr().err


def test_jpeg_cannot_hold_transparency(small_ckpt_args, tmp_path):
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.zeros((64, 64, 3), np.uint8))
    r = run_cli("--image", src, "--output", tmp_path / "a.jpg", *small_ckpt_args)
    assert r.returncode == 2 and "transparency" in r.stderr and "Traceback" not in r.stderr


def test_missing_input_is_one_line(small_ckpt_args, tmp_path):
    r = run_cli("--image", tmp_path / "nope.jpg", "--output", tmp_path / "o.png", *small_ckpt_args)
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("where", ["missing-folder", "under-a-file", "name-too-long"])
def test_unwritable_output_path_is_one_line(small_ckpt_args, tmp_path, where):
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.zeros((64, 64, 3), np.uint8))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    target = {"missing-folder": tmp_path / "no" / "such" / "o.png", "under-a-file": blocker / "o.png",
              "name-too-long": tmp_path / ("o" * 300 + ".png")}[where]  # (a traceback, before)
    r = run_cli("--image", src, "--output", target, *small_ckpt_args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "does not exist" in r.stderr or "cannot write" in r.stderr or "file name too long" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_cutout_without_a_person_says_so(tmp_path):
    """The selfie segmenter on the night sky finds nobody: the cut-out is written (it is what the
    model saw) with a warning naming the picture; the portrait gets none."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "sky.jpg").write_bytes(need(NIGHT_SKY).read_bytes())
    (photos / "me.jpg").write_bytes(need(PORTRAIT).read_bytes())
    r = run_cli("--image", photos, "--output", tmp_path / "out", "--model", "selfie",
                "--weights", need(MODELS / "selfie_segmentation.onnx"))
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "no person found" in line]
    assert len(warnings) == 1 and "sky.jpg" in warnings[0], r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["me.png", "sky.png"]
