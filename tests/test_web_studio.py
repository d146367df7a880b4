"""The studio's REST API on real pictures with the selfie and face models: sizes, DPI, framing, limits, refusals."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import face_detector, selfie_engine, NIGHT_SKY, PORTRAIT, TWO_PEOPLE, need  # noqa: E402
from idphoto import IdPhotoMaker, PRESETS  # noqa: E402
from web import UploadFolder, WebOptions, create_app  # noqa: E402


@pytest.fixture(scope="module")
def studio():
    need(PORTRAIT)
    uploads = UploadFolder(max_pixels=30_000_000)
    maker = IdPhotoMaker(selfie_engine, face_detector)
    app = create_app(maker, None, WebOptions(gradio=False, max_upload_mb=2), uploads)
    client = TestClient(app, base_url="http://127.0.0.1")
    client.uploads = uploads
    yield client
    maker.close()
    uploads.cleanup()


def portrait_bytes() -> bytes:
    return PORTRAIT.read_bytes()


def post_photo(client, data=None, name="me.jpg", **fields):
    return client.post("/api/v1/photo", files={"image": (name, data if data is not None else portrait_bytes())},
                       data={k: str(v) for k, v in fields.items()})


def decode(content: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)


def measured_head_mm(image: np.ndarray, dpi: float) -> tuple[float, float]:
    """(chin-to-crown, crown-to-top) in mm, measured on the finished photo with the models themselves."""
    faces = face_detector().detect(image)
    assert len(faces) == 1
    face = faces[0]
    alpha = cv2.resize(selfie_engine().infer(image), (image.shape[1], image.shape[0]))
    x0, x1 = int(face.center_x - face.height * 0.2), int(face.center_x + face.height * 0.2)
    rows = np.where(alpha[: int(face.eye_line_y), x0:x1].mean(axis=1) > 0.5)[0]
    crown = rows[0] if len(rows) else 0
    px_per_mm = dpi / 25.4
    return (face.chin[1] - crown) / px_per_mm, crown / px_per_mm


def test_sizes_lists_the_presets(studio):
    sizes = studio.get("/api/v1/sizes").json()
    ids = {s["id"]: s for s in sizes}
    for required in ("passport", "us", "1inch", "2inch"):
        assert required in ids
    assert ids["passport"]["width_mm"] == 35 and ids["passport"]["height_mm"] == 45
    for s in sizes:
        assert {"id", "name", "width_mm", "height_mm", "head_min_mm", "head_max_mm", "source"} <= set(s)
        assert s["source"].startswith(("https://", "http://")) or "without an issuing authority" in s["note"]


def test_passport_on_blue_has_the_size_dpi_background_and_head_the_rule_says(studio):
    r = post_photo(studio, background="blue", size="passport", dpi=300, format="jpg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    image = decode(r.content)
    assert image.shape == (531, 413, 3)
    assert Image.open(io.BytesIO(r.content)).info["dpi"] == pytest.approx((300, 300), abs=0.5)
    blue_bgr = np.array([213, 143, 0])
    for corner in (image[:20, :20], image[:20, -20:]):
        assert np.abs(corner.reshape(-1, 3).mean(axis=0) - blue_bgr).max() < 25  # the room is gone
    head, top = measured_head_mm(image, 300)
    rule = PRESETS["passport"]
    assert rule.head_min_mm - 1.0 <= head <= rule.head_max_mm + 1.0, head
    face = face_detector().detect(image)[0]
    assert abs(face.center_x - image.shape[1] / 2) < 0.05 * image.shape[1]  # centred


def test_transparent_png_cutout_keeps_alpha_and_dpi(studio):
    r = post_photo(studio, background="transparent", size="1inch", dpi=300)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = decode(r.content)
    assert image.shape == (413, 295, 4)
    assert image[:10, :10, 3].max() < 30 and image[200:260, 120:180, 3].mean() > 200
    assert Image.open(io.BytesIO(r.content)).info["dpi"] == pytest.approx((300, 300), abs=0.5)


def test_max_kb_is_met_or_refused(studio):
    r = post_photo(studio, background="white", size="passport", format="jpg", max_kb=20)
    assert r.status_code == 200 and len(r.content) <= 20 * 1024
    r = post_photo(studio, background="white", size="passport", format="jpg", max_kb=1)
    assert r.status_code == 422 and "KB" in r.json()["error"]


def test_sheet_fills_4x6_at_300_dpi(studio):
    r = studio.post("/api/v1/sheet", files={"image": ("me.jpg", portrait_bytes())},
                    data={"background": "white", "size": "passport", "paper": "4x6in", "dpi": "300"})
    assert r.status_code == 200, r.text
    image = decode(r.content)
    assert sorted(image.shape[:2]) == [1200, 1800]
    assert int(r.headers["x-copies"]) >= 6
    assert Image.open(io.BytesIO(r.content)).info["dpi"] == pytest.approx((300, 300), abs=0.5)


def test_sheet_keeps_max_kb_and_says_a_transparent_one_is_white(studio):
    fields = {"size": "passport", "paper": "4x6in", "dpi": "300"}
    r = studio.post("/api/v1/sheet", files={"image": ("me.jpg", portrait_bytes())}, data={**fields, "max_kb": "120"})
    assert r.status_code == 200 and len(r.content) <= 120 * 1024, (r.status_code, len(r.content))
    r = studio.post("/api/v1/sheet", files={"image": ("me.jpg", portrait_bytes())}, data={**fields, "max_kb": "1"})
    assert r.status_code == 422 and "KB" in r.json()["error"]
    r = studio.post("/api/v1/sheet", files={"image": ("me.jpg", portrait_bytes())},
                    data={**fields, "background": "transparent", "format": "png"})
    assert r.status_code == 200 and "white" in r.headers["X-Warnings"]
    assert decode(r.content)[5, 5].tolist()[:3] == [255, 255, 255]


@pytest.mark.parametrize("fields, fragment", [
    ({"size": "45x"}, "size"), ({"size": "passport", "dpi": "9000"}, "dpi"), ({"format": "gif"}, "format"),
    ({"background": "../../etc/passwd"}, "background"), ({"background": "README.md"}, "background"),
    ({"background": "transparent", "format": "jpg"}, "transparency"), ({"dpi": "abc"}, "dpi"),
    ({"max_kb": "-5", "size": "passport", "format": "jpg", "background": "white"}, "max_kb"),
])
def test_bad_fields_are_400_with_one_line(studio, fields, fragment):
    r = post_photo(studio, **fields)
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert fragment.lower() in message.lower() and "\n" not in message


def test_pictures_that_cannot_make_an_id_photo_are_422(studio):
    r = post_photo(studio, data=need(TWO_PEOPLE).read_bytes(), size="passport", background="white", format="jpg")
    assert r.status_code == 422 and "face" in r.json()["error"].lower()
    r = post_photo(studio, data=need(NIGHT_SKY).read_bytes(), size="passport", background="white", format="jpg")
    assert r.status_code == 422 and "no face" in r.json()["error"].lower()


def test_a_cutout_without_a_person_says_so(studio):
    r = post_photo(studio, data=need(NIGHT_SKY).read_bytes(), background="transparent")
    assert r.status_code == 200 and "no person found" in r.headers.get("X-Warnings", "")
    assert decode(r.content)[:, :, 3].max() < 128  # (the empty cut-out itself is still given)
    r = post_photo(studio, background="transparent")
    assert r.status_code == 200 and "X-Warnings" not in r.headers


def png_header(width: int, height: int) -> bytes:
    """A PNG that announces ``width``×``height`` pixels but carries almost no data (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_bad_uploads_are_refused_before_decoding(studio):
    r = post_photo(studio, data=b"%PDF-1.4 not a picture", name="doc.jpg", size="passport")
    assert r.status_code == 415 and "not a picture" in r.json()["error"]
    r = post_photo(studio, data=b"", name="empty.jpg")
    assert r.status_code == 400 and "empty" in r.json()["error"]
    r = post_photo(studio, data=png_header(20000, 20000), name="bomb.png")
    assert r.status_code == 413 and "megapixels" in r.json()["error"]
    r = post_photo(studio, data=b"\xff" * 2_100_000, name="huge.jpg")
    assert r.status_code == 413 and "too large" in r.json()["error"]
    r = studio.post("/api/v1/photo", data={"size": "passport"})
    assert r.status_code == 400 and "image" in r.json()["error"]
    r = post_photo(studio, name="../../../../tmp/evil.jpg", size="passport", background="white", format="jpg")
    assert r.status_code == 200
    assert not list(studio.uploads.path.rglob("*.*"))  # nothing left behind, nothing named by the request


def test_body_over_the_limit_is_413_before_it_is_read():
    from web.guard import BodyLimit

    received = []

    async def app(scope, receive, send):  # would read the body
        received.append(await receive())

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        raise AssertionError("the body must not be read")

    import asyncio

    scope = {"type": "http", "headers": [(b"content-length", b"30000000")]}
    asyncio.run(BodyLimit(app, 25_000_000)(scope, receive, send))
    assert sent[0]["status"] == 413 and not received


def test_a_missing_model_is_503_and_no_face_model_is_a_warning():
    from matting.errors import ModelUnavailable

    def offline_engine():
        raise ModelUnavailable("The model file x.ckpt is not in weights/ and could not be downloaded (offline)")

    def offline_faces():
        raise ModelUnavailable("no face model offline")

    uploads = UploadFolder()
    client = TestClient(create_app(IdPhotoMaker(offline_engine), None, WebOptions(gradio=False), uploads), base_url="http://127.0.0.1")
    r = post_photo(client, size="passport", background="white", format="jpg")
    assert r.status_code == 503 and "could not be downloaded" in r.json()["error"]
    maker = IdPhotoMaker(selfie_engine, offline_faces)
    client = TestClient(create_app(maker, None, WebOptions(gradio=False), uploads), base_url="http://127.0.0.1")
    r = post_photo(client, size="passport", background="white", format="jpg")
    assert r.status_code == 200 and "no face model" in r.headers["x-warnings"]
    assert decode(r.content).shape == (531, 413, 3)
    maker.close()
    uploads.cleanup()


def test_studio_actions_batch_zip_and_guides_toggle(tmp_path):
    import zipfile

    from web.studio_ui import MODES, StudioActions

    uploads = UploadFolder()
    maker = IdPhotoMaker(selfie_engine, face_detector)
    actions = StudioActions(maker, uploads)
    cache = uploads.path / "gradio" / "abc"  # where Gradio leaves uploads (GRADIO_TEMP_DIR)
    cache.mkdir(parents=True)
    portrait = cache / "portrait_720p.jpg"
    portrait.write_bytes(PORTRAIT.read_bytes())
    bad = cache / "notes.jpg"
    bad.write_bytes(b"not a picture")
    preview, download, message, previews = actions.make(
        [str(portrait), str(portrait), str(bad)], None, MODES[0], "blue", "#000000", None, "passport", "", 300,
        "jpg", 0, True)
    assert "2 of 3" in message and "notes.jpg" in message and "not a picture" in message
    names = zipfile.ZipFile(download).namelist()
    assert download.endswith(".zip") and len(names) == 2 and len(set(names)) == 2  # same name twice: both kept
    assert preview.shape == (531, 413, 3) and preview is previews[True]
    assert not np.array_equal(previews[True], previews[False])  # the guides are drawn on the preview only
    assert actions.show_guides(False, previews) is previews[False]
    sheet, sheet_file, message, sheet_previews = actions.sheet(
        [str(portrait)], None, MODES[0], "white", "", None, "passport", "", 300, "jpg", 0, "4x6in")
    assert "Sheet:" in message and sheet_file.endswith(".jpg")
    assert actions.show_guides(False, sheet_previews) is sheet  # the guides box keeps showing the sheet
    # a DPI of 0 is refused, as the REST API refuses it (it was taken as 300); an empty field is 300
    _, _, message, _ = actions.make([str(portrait)], None, MODES[0], "blue", "#000000", None, "passport", "", 0,
                                    "jpg", 0, True)
    assert "dpi must be between" in message, message
    _, download, message, _ = actions.make([str(portrait)], None, MODES[0], "blue", "#000000", None, "passport", "",
                                           None, "jpg", 0, True)
    assert download and "300 DPI" in message, message
    # Gradio's API takes anything for a number field: a message, not a traceback in the server's log
    for dpi, max_kb, words in (("abc", 0, "DPI must be a number, got 'abc'"), (300, "x", "max KB must be a number")):
        _, download, message, _ = actions.make([str(portrait)], None, MODES[0], "blue", "", None, "passport", "",
                                               dpi, "jpg", max_kb, True)
        assert download is None and words in message, message
        _, download, message, _ = actions.sheet([str(portrait)], None, MODES[0], "white", "", None, "passport", "",
                                                dpi, "jpg", max_kb, "4x6in")
        assert download is None and words in message, message
    _, _, message, _ = actions.make([str(PORTRAIT)], None, MODES[0], "blue", "", None, "passport", "", 300, "jpg",
                                    0, True)
    assert "not uploaded to this server" in message  # a path outside the upload folder is never read
    preview, download, message, _ = actions.make(None, None, MODES[0], "blue", "", None, "passport", "", 300,
                                                 "jpg", 0, True)
    assert preview is None and download is None and "Add a photo first" in message
    maker.close()
    uploads.cleanup()


def test_unknown_routes_wrong_methods_and_bad_bodies_answer_one_short_json_line(studio):
    r = studio.get("/api/v1/photo")
    assert r.status_code == 405 and r.headers["allow"] == "POST" and "use POST" in r.json()["error"]
    r = studio.put("/api/v1/sheet")
    assert r.status_code == 405 and "PUT" in r.json()["error"]
    r = studio.get("/api/v1/nope")
    assert r.status_code == 404 and "/api/v1/nope" in r.json()["error"]
    r = studio.post("/api/v1/photo", data={"image": "hello"})
    assert r.status_code == 400 and r.json()["error"].startswith("image: expected a file"), r.text
    r = studio.post("/api/v1/photo", data={"background": "blue"})
    assert r.status_code == 400 and r.json()["error"].startswith("image: missing"), r.text
    r = post_photo(studio, background="x" * 100_000)
    assert r.status_code == 400 and len(r.json()["error"]) <= 300 and "background" in r.json()["error"]


def test_a_full_queue_is_said_in_plain_words_in_the_studio(tmp_path):
    """The REST routes answer 503 when 32 pictures wait already; the studio's buttons showed Gradio's
    generic error instead of a sentence."""
    from idphoto.maker import Busy
    from web.studio_ui import MODES, StudioActions

    class FullMaker:
        def photo(self, *args, **kwargs):
            raise Busy("32 pictures are already waiting")

        sheet = photo

    uploads = UploadFolder()
    try:
        cache = uploads.path / "gradio" / "abc"
        cache.mkdir(parents=True)
        portrait = cache / "portrait_720p.jpg"
        portrait.write_bytes(PORTRAIT.read_bytes())
        actions = StudioActions(FullMaker(), uploads)
        upload = {"path": str(portrait), "orig_name": "me.jpg"}  # as Gradio hands it over, unprocessed
        _, download, message, _ = actions.make([upload], None, MODES[0], "blue", "", None, "passport", "", 300,
                                               "jpg", 0, True)
        assert download is None and "busy" in message and "32 pictures" in message
        _, download, message, _ = actions.sheet([upload], None, MODES[0], "white", "", None, "passport", "", 300,
                                                "jpg", 0, "4x6in")
        assert download is None and "busy" in message and "32 pictures" in message
    finally:
        uploads.cleanup()


@pytest.mark.parametrize("route", ["/api/v1/photo", "/api/v1/sheet"])
def test_two_images_in_one_request_are_refused_not_reduced_to_the_last(studio, route):
    """Two ``image`` fields: the photo was made of the second, silently (or a sheet refused with
    "2 faces" for the wrong picture)."""
    two = need(TWO_PEOPLE).read_bytes()
    r = studio.post(route, files=[("image", ("two.jpg", two)), ("image", ("me.jpg", portrait_bytes()))],
                    data={"size": "passport"})
    assert r.status_code == 400 and "send one image per request, not 2" in r.json()["error"], r.text
    r = studio.post(route, data={"size": "passport"})
    assert r.status_code == 400 and r.json()["error"].startswith("image: missing"), r.text


def test_studio_downloads_keep_names_in_any_script_and_never_differ_by_case_only():
    """张三.jpg downloaded as jpg-passport.jpg; a.jpg and A.jpg gave a zip whose two files are one
    once unzipped on Windows or macOS."""
    import zipfile

    from web.studio_ui import MODES, StudioActions

    uploads = UploadFolder()
    maker = IdPhotoMaker(selfie_engine, face_detector)
    try:
        actions = StudioActions(maker, uploads)
        cache = uploads.path / "gradio" / "abc"
        cache.mkdir(parents=True)
        names = ["张三.jpg", "a.jpg", "A.jpg", "हिन्दी.jpg"]
        for i, name in enumerate(names):
            (cache / f"{i}").mkdir()
            (cache / f"{i}" / name).write_bytes(PORTRAIT.read_bytes())
        files = [str(cache / f"{i}" / name) for i, name in enumerate(names)]
        _, download, message, _ = actions.make(files, None, MODES[0], "white", "", None, "passport", "", 300, "jpg",
                                               0, False)
        inside = zipfile.ZipFile(download).namelist()
        assert "张三-passport.jpg" in inside and "हिन्दी-passport.jpg" in inside, inside  # (vowel signs kept)
        assert len({n.lower() for n in inside}) == 4, inside
        _, download, _, _ = actions.make(files[:1], None, MODES[0], "white", "", None, "passport", "", 300, "jpg",
                                         0, False)
        assert Path(download).name == "张三-passport.jpg"
    finally:
        maker.close()
        uploads.cleanup()


def test_empty_and_non_picture_uploads_are_told_plainly_in_the_studio_as_over_rest(tmp_path):
    """The studio said "a rare kind such as a 32-bit float TIFF" for an empty file and for text."""
    from web.uploads import UploadError

    uploads = UploadFolder()
    try:
        empty, text = uploads.path / "empty.jpg", uploads.path / "notes.jpg"
        empty.write_bytes(b"")
        text.write_text("hello")
        with pytest.raises(UploadError, match="the uploaded file is empty"):
            uploads.read_picture_file(empty)
        with pytest.raises(UploadError, match="not a picture, or a damaged one") as refused:
            uploads.read_picture_file(text)
        assert "TIFF" not in str(refused.value) and refused.value.status == 415
    finally:
        uploads.cleanup()


def test_a_jpeg_id_photo_over_the_api_without_a_background_says_the_default_is_transparent(studio):
    r = post_photo(studio, size="passport", format="jpg")
    assert r.status_code == 400 and "the API's default is transparent" in r.json()["error"], r.text


def test_cut_out_mode_locks_the_controls_it_ignores():
    """Cut-out mode left Background (white) and Format (jpg) to choose, and made a transparent PNG anyway."""
    pytest.importorskip("gradio")
    from web.studio_ui import MODES, mode_controls

    size, background, fmt, button = mode_controls(MODES[1])
    assert not size["interactive"] and not background["interactive"] and not fmt["interactive"]
    assert fmt["value"] == "png" and background["value"] == "transparent" and button["value"] == "Make cut-out"
    size, background, fmt, button = mode_controls(MODES[0])
    assert size["interactive"] and background["interactive"] and fmt["interactive"]
    assert fmt["value"] == "jpg" and button["value"] == "Make ID photo"
