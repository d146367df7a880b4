"""ID-photo sizes and papers: preset pixels at 300 DPI, the rules' sanity, custom sizes, parse errors, JSON."""

import json

import pytest

from idphoto.errors import IdPhotoError
from idphoto.sizes import (DEFAULT_PAPER, PAPERS, PRESETS, PROPORTIONAL_HEAD, PROPORTIONAL_TOP, Paper, PhotoSize,
                           mm_to_px, papers_json, parse_paper, parse_size, presets_json)


@pytest.mark.parametrize("pid, pixels", [("passport", (413, 531)), ("us", (600, 600)), ("1inch", (295, 413)),
                                         ("2inch", (413, 579)), ("uk", (413, 531)), ("jp", (413, 531)),
                                         ("cn-visa", (390, 567)), ("ca", (591, 827)), ("in", (600, 600))])
def test_preset_pixels_at_300dpi(pid, pixels):
    assert PRESETS[pid].pixels(300) == pixels


def test_required_ids():
    assert {"passport", "us", "1inch", "2inch", "uk", "schengen", "cn-visa", "jp", "in", "ca"} <= set(PRESETS)


@pytest.mark.parametrize("size", list(PRESETS.values()), ids=list(PRESETS))
def test_preset_rules_are_consistent(size: PhotoSize):
    assert 0 < size.head_min_mm < size.head_max_mm < size.height_mm
    for low, high in ((size.top_min_mm, size.top_max_mm), (size.eye_min_mm, size.eye_max_mm)):
        assert (low is None) == (high is None)
        if low is not None:
            assert 0 <= low < high < size.height_mm
    if size.top_max_mm is not None:             # room for crown margin + head
        assert size.top_min_mm + size.head_min_mm < size.height_mm
    if size.id in ("1inch", "2inch"):           # no issuing authority: proportional framing, no source
        assert size.source == ""
        assert size.fractions()["head"] == pytest.approx(PROPORTIONAL_HEAD, abs=1e-3)
    else:
        assert size.source.startswith(("https://", "http://"))


def test_known_rule_figures():
    us = PRESETS["us"]
    assert (us.width_mm, us.head_min_mm, us.head_max_mm) == pytest.approx((50.8, 25.4, 34.925))
    assert (us.eye_min_mm, us.eye_max_mm) == pytest.approx((28.575, 34.925))
    assert (PRESETS["uk"].head_min_mm, PRESETS["uk"].head_max_mm) == (29, 34)
    assert (PRESETS["jp"].top_min_mm, PRESETS["jp"].top_max_mm) == (2, 6)
    assert (PRESETS["passport"].top_min_mm, PRESETS["passport"].eye_min_mm) == (None, None)


@pytest.mark.parametrize("text", ["passport", "PASSPORT", "  Us ", "CN-VISA"])
def test_preset_ids_any_case(text):
    assert parse_size(text) is PRESETS[text.strip().lower()]


@pytest.mark.parametrize("text, pixels", [("35x45mm", (413, 531)), ("35 X 45 mm", (413, 531)),
                                          ("35×45mm", (413, 531)), ("3.5x4.5cm", (413, 531)),
                                          ("2x2in", (600, 600)), ("1.5x2inch", (450, 600)),
                                          ("33.5x48.5mm", (396, 573))])
def test_custom_physical_sizes(text, pixels):
    size = parse_size(text)
    assert size.pixels(300) == pixels
    assert size.width_px is None
    fr = size.fractions()
    assert fr["head"] == pytest.approx(PROPORTIONAL_HEAD, abs=1e-3)
    assert fr["top"] == pytest.approx(PROPORTIONAL_TOP, abs=1e-3)
    assert fr["eye"] is None


def test_custom_pixel_size_keeps_pixels_at_any_dpi():
    size = parse_size("600x800px")
    assert (size.width_px, size.height_px) == (600, 800)
    assert size.pixels(72) == size.pixels(600) == (600, 800)
    assert (size.width_mm, size.height_mm) == pytest.approx((50.8, 67.733), abs=1e-3)
    assert parse_size("600x800px", dpi=600).width_mm == pytest.approx(25.4)
    assert size.fractions()["head"] == pytest.approx(PROPORTIONAL_HEAD, abs=1e-3)


@pytest.mark.parametrize("text", ["", "banana", "35x45", "35x45m", "35x45 feet", "0x45mm", "-35x45mm",
                                  "35x0mm", "2000x45mm", "4x4mm", "45x1001mm", "31x600px", "600x20001px",
                                  "600.5x800px", "nanxnanmm", "1e3x1e3mm"])
def test_bad_sizes(text):
    with pytest.raises(IdPhotoError) as err:
        parse_size(text)
    message = str(err.value)
    assert "\n" not in message and "WxHmm" in message and "passport" in message


@pytest.mark.parametrize("dpi", [0, -300, float("nan"), 1e6])
def test_bad_dpi(dpi):
    with pytest.raises(IdPhotoError):
        parse_size("600x800px", dpi=dpi)


def test_papers():
    assert DEFAULT_PAPER == "4x6in" and set(PAPERS) >= {"4x6in", "5x7in", "a4", "a5", "a6", "letter", "3.5x5in"}
    assert PAPERS["4x6in"].pixels(300) == (1200, 1800)
    assert PAPERS["4x6in"].pixels(300, landscape=True) == (1800, 1200)
    assert PAPERS["a4"].pixels(300) == (2480, 3508)
    assert PAPERS["letter"].pixels(300) == (2550, 3300)
    for paper in PAPERS.values():
        assert paper.width_mm <= paper.height_mm


def test_parse_paper():
    assert parse_paper("A4") is PAPERS["a4"] and parse_paper(" Letter ") is PAPERS["letter"]
    assert parse_paper("4X6IN") is PAPERS["4x6in"]
    custom = parse_paper("6x4in")
    assert isinstance(custom, Paper) and (custom.width_mm, custom.height_mm) == pytest.approx((101.6, 152.4))
    assert parse_paper("100x150mm").pixels(300) == (mm_to_px(100, 300), mm_to_px(150, 300))
    assert parse_paper("13x18cm").pixels(300) == (1535, 2126)


@pytest.mark.parametrize("text", ["a3", "", "600x800px", "5x5mm", "2000x2000mm", "four by six"])
def test_bad_papers(text):
    with pytest.raises(IdPhotoError) as err:
        parse_paper(text)
    assert "\n" not in str(err.value) and "4x6in" in str(err.value)


def test_presets_json():
    rows = json.loads(json.dumps(presets_json()))
    assert [r["id"] for r in rows] == list(PRESETS)
    keys = {"id", "name", "width_mm", "height_mm", "head_min_mm", "head_max_mm", "top_min_mm", "top_max_mm",
            "eye_min_mm", "eye_max_mm", "source", "note", "pixels_300dpi"}
    assert all(set(r) == keys for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert by_id["passport"]["pixels_300dpi"] == [413, 531] and by_id["us"]["eye_min_mm"] == 28.575
    assert by_id["passport"]["top_min_mm"] is None


def test_papers_json():
    rows = json.loads(json.dumps(papers_json()))
    assert [r["id"] for r in rows] == list(PAPERS)
    assert {r["id"]: r["pixels_300dpi"] for r in rows}["4x6in"] == [1200, 1800]
    assert [r["id"] for r in rows if r["default"]] == ["4x6in"]
