"""Nothing of the user's is lost: inputs are never overwritten, files land with normal permissions."""

import errno
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "live.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "MODNET_OFFLINE": "1"})


@pytest.fixture
def small_ckpt_args(reference_ckpt):
    return ["--weights", str(reference_ckpt), "--inference-size", "64"]


def picture(path, value=90):
    cv2.imwrite(str(path), np.full((48, 64, 3), value, np.uint8))
    return path.read_bytes()


def assert_refused(r):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "overwrite" in r.stderr or "originals would be replaced" in r.stderr, r.stderr


@pytest.mark.parametrize("background", [[], ["--background", "blue"]])
def test_output_equal_to_input_is_refused(small_ckpt_args, tmp_path, background):
    src = tmp_path / ("a.png" if not background else "a.jpg")
    before = picture(src)
    r = run_cli("--image", src, "--output", src, *background, *small_ckpt_args)
    assert_refused(r)
    assert src.read_bytes() == before


def test_output_folder_holding_the_input_is_refused(small_ckpt_args, tmp_path):
    src = tmp_path / "a.jpg"
    before = picture(src)
    r = run_cli("--image", src, "--output", tmp_path, "--background", "blue", *small_ckpt_args)
    assert_refused(r)
    assert src.read_bytes() == before


@pytest.mark.parametrize("output", ["same", "same-with-slash", "dot"])
def test_folder_written_into_itself_is_refused(small_ckpt_args, tmp_path, output):
    photos = tmp_path / "photos"
    photos.mkdir()
    originals = {name: picture(photos / name, 40 + i) for i, name in enumerate(["a.jpg", "b.png", "c.jpg"])}
    target = {"same": str(photos), "same-with-slash": f"{photos}/", "dot": f"{photos}/./"}[output]
    r = run_cli("--image", f"{photos}/", "--output", target, "--background", "blue", *small_ckpt_args)
    assert_refused(r)
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == originals


def test_two_inputs_with_one_stem_keep_both_results(small_ckpt_args, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    picture(photos / "a.jpg", 40)
    picture(photos / "a.png", 200)
    out = tmp_path / "out"
    r = run_cli("--image", photos, "--output", out, *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a_jpg.png", "a_png.png"]


def test_a_results_name_does_not_depend_on_the_other_pictures(tmp_path):
    """a.jpg's result was a.png until an a.bmp joined the folder; run again, a.bmp's "kept" result
    was a.jpg's cut-out, and a.jpg was done a second time under another name."""
    from app.photo_mode import plan_outputs

    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for name in ("a.jpg", "b.png"):
        picture(photos / name)
    first = dict(plan_outputs(photos, out, transparent=True))
    assert first[photos / "a.jpg"].name == "a.png"
    picture(photos / "a.png")
    picture(photos / "A.bmp")  # one stem, whatever the case: a case-insensitive disk holds one a.png
    second = {p.name: t.name for p, t in plan_outputs(photos, out, transparent=True)}
    assert second == {"a.jpg": "a_jpg.png", "a.png": "a_png.png", "A.bmp": "A_bmp.png", "b.png": "b.png"}
    assert first[photos / "a.jpg"].name not in second.values()  # no picture takes another's old result


def test_existing_output_is_never_overwritten(small_ckpt_args, tmp_path):
    src = tmp_path / "a.png"
    picture(src)
    out = tmp_path / "result.png"
    out.write_bytes(b"the user's own file")
    r = run_cli("--image", src, "--output", out, *small_ckpt_args)
    assert_refused(r)
    assert "--overwrite" in r.stderr and str(out) in r.stderr
    assert out.read_bytes() == b"the user's own file"


def test_overwrite_replaces_an_existing_output_atomically(small_ckpt_args, tmp_path):
    src = tmp_path / "a.png"
    picture(src)
    out = tmp_path / "result.png"
    out.write_bytes(b"old result")
    r = run_cli("--image", src, "--output", out, "--overwrite", *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (48, 64, 4)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_folder_run_again_keeps_the_results_already_there(small_ckpt_args, tmp_path):
    """Pictures added to a folder since the last run: only they are processed; the results there
    are kept (not redone); when all are there nothing is done; --overwrite redoes them all."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    out.mkdir()
    for i, name in enumerate(["a.jpg", "b.png", "c.jpg"]):
        picture(photos / name, 40 + 30 * i)
    (out / "b.png").write_bytes(b"kept")
    r = run_cli("--image", photos, "--output", out, *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert "kept 1 result" in r.stderr and "b.png" in r.stderr and "--overwrite" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    assert (out / "b.png").read_bytes() == b"kept"
    assert r.stdout.split() == [str(out / "a.png"), str(out / "c.png")]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = run_cli("--image", photos, "--output", out, *small_ckpt_args)
    assert_refused(r)
    assert "nothing to do" in r.stderr and {p.name: p.read_bytes() for p in out.iterdir()} == before
    r = run_cli("--image", photos, "--output", out, "--overwrite", *small_ckpt_args)
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED).shape == (48, 64, 4)


def test_existing_recording_is_never_overwritten(tmp_path):
    clip = tmp_path / "call.mp4"
    clip.write_bytes(b"last week's call")
    r = run_cli("--source", "missing.mp4", "--record", clip, "--no-window")
    assert_refused(r)
    assert "--overwrite" in r.stderr and clip.read_bytes() == b"last week's call"
    folder = tmp_path / "rec.mp4"
    folder.mkdir()
    r = run_cli("--source", "missing.mp4", "--record", folder, "--no-window")
    assert r.returncode == 2 and "folder" in r.stderr, r.stderr


def test_existing_onnx_export_is_replaced_only_with_overwrite(reference_ckpt, tmp_path):
    target = tmp_path / "modnet.onnx"
    target.write_bytes(b"an older export")
    r = run_cli("--export-onnx", target, "--weights", reference_ckpt)
    assert_refused(r)
    assert target.read_bytes() == b"an older export"
    r = run_cli("--export-onnx", target, "--weights", reference_ckpt, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert target.stat().st_size > 1_000_000 and not list(tmp_path.glob(".*.part"))


def _mode(path):
    return os.stat(path).st_mode & 0o777


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_photo_outputs_follow_the_umask(small_ckpt_args, tmp_path, umask):
    src = tmp_path / "a.png"
    picture(src)
    out = tmp_path / "out"
    code = (f"import os, sys; os.umask({umask}); sys.argv = ['live.py'] + sys.argv[1:]; "
            f"sys.path.insert(0, {str(ROOT)!r}); from app.cli import main; sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", code, "--image", str(tmp_path), "--output", str(out),
                        *small_ckpt_args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _mode(out / "a.png") == 0o666 & ~umask


def test_atomic_writes_and_downloads_follow_the_umask(tmp_path):
    from matting.files import open_temp_beside, write_atomic

    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "x.bin", b"data")
        fd, tmp = open_temp_beside(tmp_path / "y.bin")
        os.close(fd)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "x.bin") == 0o640
    assert _mode(tmp) == 0o640 and tmp.name.startswith(".y.bin.") and tmp.name.endswith(".part")


def test_downloaded_model_has_normal_permissions(tmp_path):
    import http.server
    import threading

    from matting.weights import download

    payload = b"model bytes" * 100

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    old = os.umask(0o022)
    try:
        path = download(f"http://127.0.0.1:{server.server_address[1]}/m.ckpt", tmp_path / "m.ckpt", progress=False)
    finally:
        os.umask(old)
        server.shutdown()
    assert path.read_bytes() == payload and _mode(path) == 0o644


def test_a_file_made_while_a_picture_is_processed_is_not_replaced(tmp_path, monkeypatch):
    """The check for an existing output runs before the work: a file saved there meanwhile (the
    user, another run into the same folder) was silently replaced when the result landed."""
    import app.photo_mode as photo_mode

    src, out = tmp_path / "a.png", tmp_path / "result.png"
    picture(src)

    def cut_out_while_the_user_saves(engine, image, background, compositor, alpha=None):
        out.write_bytes(b"saved by the user meanwhile")
        return np.zeros((48, 64, 4), np.uint8), True

    monkeypatch.setattr(photo_mode, "cut_out", cut_out_while_the_user_saves)
    with pytest.raises(photo_mode.WriteError, match="there is a file of that name now"):
        photo_mode.run_photo(None, str(src), str(out), None, None, progress=False, targets=[(src, out)])
    assert out.read_bytes() == b"saved by the user meanwhile"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    photo_mode.run_photo(None, str(src), str(out), None, None, progress=False, targets=[(src, out)],
                         overwrite=True)  # --overwrite: replaced, as asked
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (48, 64, 4)


def test_writing_without_replacing_never_replaces_and_leaves_no_temporary_file(tmp_path):
    from matting.files import write_atomic

    target = tmp_path / "x.bin"
    write_atomic(target, b"new", replace=False)
    assert target.read_bytes() == b"new"
    with pytest.raises(FileExistsError):
        write_atomic(target, b"newer", replace=False)
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["x.bin"]


@pytest.mark.parametrize("err", [errno.EINVAL, errno.EPERM, errno.EACCES], ids=["exFAT-on-Windows", "FAT", "FUSE"])
def test_writing_without_replacing_works_where_there_are_no_hard_links(tmp_path, monkeypatch, err):
    """A USB stick or share without hard links: every photo failed with "Incorrect function"."""
    from matting import files

    def no_links(src, dst):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(files.os, "link", no_links)
    target = tmp_path / "x.bin"
    files.write_atomic(target, b"new", replace=False)
    assert target.read_bytes() == b"new"
    with pytest.raises(FileExistsError, match="there is a file of that name now"):
        files.write_atomic(target, b"newer", replace=False)
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError, match="a link to nothing"):
        files.write_atomic(tmp_path / "gone", b"x", replace=False)
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["gone", "x.bin"]
