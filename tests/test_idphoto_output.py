"""ID-photo encoding: DPI in PNG/JPEG metadata, channel order, transparency rules, the max_kb search."""

import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from idphoto.errors import IdPhotoError
from idphoto.output import content_type, encode


def portrait_like(width: int = 413, height: int = 531, seed: int = 0) -> np.ndarray:
    """A deterministic BGR picture with smooth shading, edges and fine texture (JPEG sizes like a photo's)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([180 + 40 * np.sin(xx / 37), 200 - 60 * yy / height, 150 + 30 * np.cos(yy / 23)], -1)
    cv2.ellipse(image, (width // 2, height * 2 // 5), (width // 4, height // 4), 0, 0, 360, (90, 140, 200), -1)
    cv2.rectangle(image, (width // 6, height * 3 // 4), (width * 5 // 6, height), (60, 50, 40), -1)
    image += cv2.GaussianBlur(rng.normal(0, 18, image.shape).astype(np.float32), (0, 0), 1.2)
    return np.clip(image, 0, 255).astype(np.uint8)


def read_back(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("fmt, pil_format", [("png", "PNG"), ("jpg", "JPEG"), ("JPEG", "JPEG"), (".PNG", "PNG")])
@pytest.mark.parametrize("dpi", [300, 600, 72])
def test_dpi_in_metadata(fmt, pil_format, dpi):
    pil = read_back(encode(portrait_like(), fmt, dpi))
    assert pil.format == pil_format and pil.size == (413, 531)
    assert pil.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)


def test_colour_order_and_alpha_kept():
    bgr = np.zeros((40, 50, 3), np.uint8)
    bgr[:, :, 0] = 255                                  # pure blue in OpenCV order
    decoded = cv2.imdecode(np.frombuffer(encode(bgr, "png", 300), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, bgr)
    assert read_back(encode(bgr, "png", 300)).getpixel((0, 0)) == (0, 0, 255)
    bgra = np.dstack([bgr, np.full((40, 50), 128, np.uint8)])
    decoded = cv2.imdecode(np.frombuffer(encode(bgra, "png", 300), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded, bgra)
    jpeg = cv2.imdecode(np.frombuffer(encode(bgr, "jpg", 300), np.uint8), cv2.IMREAD_COLOR)
    assert jpeg[20, 25, 0] > 240 and jpeg[20, 25, 2] < 15


def test_jpeg_refuses_transparency():
    bgra = np.dstack([portrait_like(), np.full((531, 413), 255, np.uint8)])
    assert read_back(encode(bgra, "jpg", 300)).mode == "RGB"        # fully opaque: fine
    bgra[10, 10, 3] = 254
    with pytest.raises(IdPhotoError, match="^JPEG cannot hold transparency: choose a background colour or PNG$"):
        encode(bgra, "jpeg", 300)
    assert read_back(encode(bgra, "png", 300)).mode == "RGBA"


def test_content_type_and_bad_format():
    assert content_type("png") == "image/png"
    assert content_type("jpg") == content_type("JPEG") == "image/jpeg"
    for bad in ("gif", "", "webp"):
        with pytest.raises(IdPhotoError, match="png or jpg"):
            encode(portrait_like(), bad, 300)
        with pytest.raises(IdPhotoError):
            content_type(bad)


@pytest.mark.parametrize("image", [np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 2), np.uint8),
                                   np.zeros((0, 10, 3), np.uint8), "not an image"])
def test_bad_images(image):
    with pytest.raises(IdPhotoError):
        encode(image, "png", 300)


@pytest.mark.parametrize("max_kb", [0, -5, float("nan")])
def test_bad_limit(max_kb):
    with pytest.raises(IdPhotoError):
        encode(portrait_like(), "jpg", 300, max_kb)


def test_max_kb_gives_the_highest_quality_that_fits():
    image = portrait_like()
    sizes = {q: len(encode(image, "jpg", 300, quality=q)) for q in range(10, 96)}
    assert all(sizes[q] <= sizes[q + 1] for q in range(10, 95))     # the search relies on this
    for max_kb in (8, 12, 20, 35):
        data = encode(image, "jpg", 300, max_kb)
        best = max(q for q, n in sizes.items() if n <= max_kb * 1024)
        assert len(data) <= max_kb * 1024
        assert data == encode(image, "jpg", 300, quality=best)
        pil = read_back(data)
        assert pil.size == (413, 531) and pil.info["dpi"] == pytest.approx((300, 300))


def test_bigger_limit_never_gives_a_smaller_file():
    image = portrait_like(seed=3)
    lengths = [len(encode(image, "jpg", 300, kb)) for kb in range(6, 80, 2)]
    assert lengths == sorted(lengths)
    assert encode(image, "jpg", 300, 10_000) == encode(image, "jpg", 300)   # 95 fits: untouched


def test_impossible_limit_says_the_smallest_reachable():
    image = portrait_like()
    smallest = len(encode(image, "jpg", 300, quality=10))
    with pytest.raises(IdPhotoError) as err:
        encode(image, "jpg", 300, max_kb=smallest / 1024 - 0.5)
    message = str(err.value)
    assert "\n" not in message and f"{smallest / 1024:.1f} KB" in message and "quality 10" in message
    assert len(encode(image, "jpg", 300, max_kb=smallest / 1024)) == smallest


def test_png_limit():
    image = portrait_like()
    data = encode(image, "png", 300, max_kb=10_000)
    assert len(data) <= len(encode(image, "png", 300))              # level 9 + optimise: never bigger
    assert read_back(data).info["dpi"] == pytest.approx((300, 300), abs=0.01)
    with pytest.raises(IdPhotoError, match="choose jpg"):
        encode(image, "png", 300, max_kb=20)
    cutout = np.dstack([image, np.full(image.shape[:2], 128, np.uint8)])  # transparent: PNG only, no jpg to choose
    with pytest.raises(IdPhotoError, match=r"allow more KB \(a transparent cut-out is PNG only\)"):
        encode(cutout, "png", 300, max_kb=20)
    with pytest.raises(IdPhotoError, match="cannot fit the sheet in 1 KB"):
        encode(image, "jpg", 300, max_kb=1, what="sheet")


def test_max_kb_search_is_fast():
    image = portrait_like()
    encode(image, "jpg", 300, 15)                                    # warm up
    start = time.perf_counter()
    for _ in range(5):
        encode(image, "jpg", 300, 15)
    per_call = (time.perf_counter() - start) / 5
    assert per_call < 0.25, f"{per_call * 1000:.0f} ms per max_kb search on 413×531"
