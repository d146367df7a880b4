"""The server's defences: no server files through Gradio, no other websites, bounded bodies, memory and queues."""

from __future__ import annotations

import concurrent.futures
import json
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from conftest import face_detector, selfie_engine, NIGHT_SKY, PORTRAIT, need  # noqa: E402
from idphoto import IdPhotoMaker, PhotoRequest  # noqa: E402
from web import UploadFolder, WebOptions, create_app  # noqa: E402

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def app_parts():
    need(PORTRAIT)
    uploads = UploadFolder()
    maker = IdPhotoMaker(selfie_engine, face_detector)
    app = create_app(maker, None, WebOptions(gradio=False, max_upload_mb=1), uploads)
    yield app, maker, uploads
    maker.close()
    uploads.cleanup()


@pytest.fixture()
def client(app_parts):
    return TestClient(app_parts[0], base_url=LOCAL, raise_server_exceptions=False)


def test_other_websites_and_rebound_host_names_are_refused(client):
    r = client.get("/api/v1/sizes", headers={"Host": "rebind.attacker.example"})
    assert r.status_code == 421 and "error" in r.json()
    r = client.post("/api/v1/photo", files={"image": ("a.jpg", b"x")},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "other websites" in r.json()["error"]
    r = client.post("/api/v1/photo", files={"image": ("a.jpg", b"x")}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    same = {"Origin": "http://127.0.0.1:7860", "Host": "127.0.0.1:7860"}
    r = client.post("/api/v1/photo", files={"image": ("a.jpg", b"x")}, headers=same)
    assert r.status_code == 415  # same origin: reaches the route (and is refused there for what it is)
    for other in ("http://127.0.0.1:8000", "http://localhost:7860", "https://127.0.0.1:7860"):
        # another local server's page (or the same port under another name) is another website
        r = client.post("/api/v1/photo", files={"image": ("a.jpg", b"x")}, headers={**same, "Origin": other})
        assert r.status_code == 403, other
    assert client.get("/api/v1/sizes", headers={"Host": "localhost:7860"}).status_code == 200


def test_a_streamed_body_over_the_limit_is_413(client):
    def body():
        yield b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--zz--\r\n"

    r = client.post("/api/v1/photo", content=body(), headers={"content-type": "multipart/form-data; boundary=zz"})
    assert r.status_code == 413 and "too large" in r.json()["error"]


def test_every_error_is_json_with_one_line(client):
    r = client.get("/api/v1/nope")
    assert r.status_code == 404 and set(r.json()) == {"error"}
    r = client.put("/api/v1/sizes")
    assert r.status_code == 405 and set(r.json()) == {"error"}
    for value in ("blur:1e9", "blur:nan", "blur:inf", "blur:-5", "blur:abc"):
        r = client.post("/api/v1/photo", files={"image": ("me.jpg", PORTRAIT.read_bytes())},
                        data={"background": value, "size": "passport", "format": "jpg"})
        assert r.status_code == 400 and "blur" in r.json()["error"], value


def test_huge_outputs_are_refused_before_any_work(client, app_parts):
    for fields in ({"size": "20000x20000px"}, {"size": "1000x1000mm", "dpi": "1200"}):
        started = time.monotonic()
        r = client.post("/api/v1/photo", files={"image": ("me.jpg", PORTRAIT.read_bytes())},
                        data={**fields, "background": "white", "format": "jpg"})
        assert r.status_code == 400 and "too large" in r.json()["error"]
        assert time.monotonic() - started < 2
    r = client.post("/api/v1/sheet", files={"image": ("me.jpg", PORTRAIT.read_bytes())},
                    data={"paper": "a4", "dpi": "1200"})
    assert r.status_code == 400 and "page would be" in r.json()["error"]


def test_a_picture_the_matte_misses_is_422_not_a_blank_photo(client):
    # the selfie model finds no person in a gray version of the portrait; the face model still does
    ok, png = cv2.imencode(".png", cv2.cvtColor(cv2.imread(str(PORTRAIT)), cv2.COLOR_BGR2GRAY))
    r = client.post("/api/v1/photo", files={"image": ("gray.png", png.tobytes())},
                    data={"size": "passport", "background": "blue", "format": "jpg"})
    assert r.status_code == 422 and "could not be separated" in r.json()["error"]


def test_a_full_queue_answers_503_with_retry_after(client, app_parts):
    maker = app_parts[1]
    maker.MAX_WAITING = 0
    try:
        r = client.post("/api/v1/photo", files={"image": ("me.jpg", PORTRAIT.read_bytes())},
                        data={"size": "passport", "background": "white", "format": "jpg"})
        assert r.status_code == 503 and r.headers["retry-after"] == "30" and "waiting" in r.json()["error"]
    finally:
        del maker.MAX_WAITING


def test_parallel_jobs_give_the_same_photos_as_one_at_a_time():
    pictures = [cv2.imread(str(PORTRAIT)), cv2.flip(cv2.imread(str(PORTRAIT)), 1),
                cv2.resize(cv2.imread(str(PORTRAIT)), (1000, 562))]
    request = PhotoRequest(background="blue", size="passport", format="png")
    serial = IdPhotoMaker(selfie_engine, face_detector)
    expected = [serial.photo(p, PhotoRequest(**vars(request))).image for p in pictures]
    serial.close()
    parallel = IdPhotoMaker(selfie_engine, face_detector, jobs=3)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        for _ in range(2):
            results = list(pool.map(lambda p: parallel.photo(p, PhotoRequest(**vars(request))).image, pictures))
            for got, want in zip(results, expected):
                assert np.array_equal(got, want)
    assert len(parallel._workers) <= 3
    parallel.close()


def test_gradio_never_reads_a_file_the_client_names(tmp_path):
    pytest.importorskip("gradio")
    uploads = UploadFolder()
    maker = IdPhotoMaker(selfie_engine, face_detector)
    app = create_app(maker, None, WebOptions(gradio=True), uploads)
    secret = need(NIGHT_SKY)
    with TestClient(app, base_url=LOCAL) as client:
        file_data = {"path": str(secret), "meta": {"_type": "gradio.FileData"}, "orig_name": "x.jpg"}
        data = [[file_data], None, "Cut-out (transparent PNG)", "white", "#4a90d9", None, "passport", "", 300,
                "png", 0, True]
        r = client.post("/gradio_api/call/make", json={"data": data})
        events = ""
        if r.status_code == 200:
            event_id = r.json()["event_id"]
            with client.stream("GET", f"/gradio_api/call/make/{event_id}", timeout=60) as stream:
                for line in stream.iter_lines():
                    events += line + "\n"
                    if line.startswith("event: error") or (line.startswith("data:") and "complete" in events):
                        break
        assert "Done" not in events and str(secret) not in json.dumps(list(uploads.path.rglob("*")), default=str)
        assert not list((uploads.path / "results").rglob("*.png")) if (uploads.path / "results").exists() else True
        # with the web page mounted at / (which takes every path), the API still has its own 404 and 405
        for path in ("/api/v1/nope", "/api/v1", "/api", "/api/", "/api/v2/sizes", "/api/v1?x=1"):
            r = client.get(path)
            assert r.status_code == 404 and "no such API route" in r.json()["error"], (path, r.text)
        assert client.get("/api/openapi.json").status_code == 200  # the routes' list is still there
        r = client.delete("/api/v1/photo")
        assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
        r = client.get("/api/v1/health/", follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/api/v1/health"
    maker.close()
    uploads.cleanup()

