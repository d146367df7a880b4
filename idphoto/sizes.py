"""ID-photo sizes and print papers: presets with the issuing authority's framing rule, custom sizes, pixel maths.

Pixel size = round(mm / 25.4 × DPI): a 35×45 mm passport photo at 300 DPI is
413×531 px. Framing targets are stored in millimetres as the rules state
them; :meth:`PhotoSize.fractions` gives them as fractions of the photo's
height, which is what the framing works with (so custom pixel sizes work too).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from idphoto.errors import IdPhotoError

MM_PER_INCH = 25.4


def mm_to_px(mm: float, dpi: float) -> int:
    """Millimetres at ``dpi`` dots per inch, rounded to whole pixels."""
    return int(round(mm / MM_PER_INCH * dpi))


@dataclass(frozen=True)
class PhotoSize:
    id: str
    name: str
    width_mm: float
    height_mm: float
    head_min_mm: float                  # chin to crown (top of the hair), smallest allowed
    head_max_mm: float                  # ... largest allowed
    top_min_mm: float | None = None     # crown to the photo's top edge (rules that say so)
    top_max_mm: float | None = None
    eye_min_mm: float | None = None     # eye line above the photo's bottom edge (rules that say so)
    eye_max_mm: float | None = None
    source: str = ""                    # the authority's published rule (URL)
    width_px: int | None = None         # custom "WxHpx" sizes: exact pixels at any DPI
    height_px: int | None = None

    def pixels(self, dpi: float) -> tuple[int, int]:
        """(width, height) in pixels at ``dpi``."""
        if self.width_px is not None and self.height_px is not None:
            return self.width_px, self.height_px
        return mm_to_px(self.width_mm, dpi), mm_to_px(self.height_mm, dpi)

    def fractions(self) -> dict[str, tuple[float, float] | None]:
        """Targets as fractions of the photo's height: ``head`` (chin to crown), ``top`` (crown to top
        edge) and ``eye`` (eye line above the bottom edge); ``None`` where the rule sets no such target."""
        h = self.height_mm

        def pair(low, high):
            return None if low is None or high is None else (low / h, high / h)

        return {"head": pair(self.head_min_mm, self.head_max_mm), "top": pair(self.top_min_mm, self.top_max_mm),
                "eye": pair(self.eye_min_mm, self.eye_max_mm)}


# --------------------------------------------------------------------------------------------------------
# Presets. Head = chin to crown. Figures are the rule's own; inch rules are kept exact (1 in = 25.4 mm).
# A rule that sets no top margin or eye line leaves those None (the framing then uses the head rule only).
# --------------------------------------------------------------------------------------------------------

IN = MM_PER_INCH

# Custom sizes (and the studio sizes with no issuing authority) get ICAO-like proportions.
PROPORTIONAL_HEAD = (0.71, 0.80)    # chin to crown, fraction of the photo's height
PROPORTIONAL_TOP = (0.07, 0.11)     # crown to top edge, fraction of the photo's height


def _proportional(id: str, name: str, width_mm: float, height_mm: float, source: str = "",
                  width_px: int | None = None, height_px: int | None = None) -> PhotoSize:
    h = height_mm
    return PhotoSize(id, name, width_mm, height_mm, round(PROPORTIONAL_HEAD[0] * h, 2),
                     round(PROPORTIONAL_HEAD[1] * h, 2), round(PROPORTIONAL_TOP[0] * h, 2),
                     round(PROPORTIONAL_TOP[1] * h, 2), source=source, width_px=width_px, height_px=height_px)


_PRESET_LIST = [
    # ICAO Doc 9303 (and ISO/IEC 19794-5) as applied to the 35×45 mm print used in the EU and most of the
    # world: "chin to crown 70–80 % of the photo's height", published by issuing states as 32–36 mm.
    # No top margin or eye line in mm: None.
    PhotoSize("passport", "Passport (ICAO 9303 / EU) 35×45 mm", 35, 45, 32, 36,
              source="https://www.icao.int/publications/pages/publication.aspx?docnum=9303"),
    # travel.state.gov: "2 x 2 inches (51 x 51 mm)"; photo composition template: "head ... between 1 inch
    # and 1 3/8 inches (25 mm - 35 mm) from the bottom of the chin to the top of the head"; "eye height ...
    # between 1 1/8 inches to 1 3/8 inches (28 mm - 35 mm) from the bottom of the photo". Same rule for visas.
    PhotoSize("us", "US passport / visa 2×2 in", 2 * IN, 2 * IN, 1 * IN, 1.375 * IN,
              eye_min_mm=1.125 * IN, eye_max_mm=1.375 * IN,
              source="https://travel.state.gov/content/travel/en/passports/how-apply/photos.html"),
    # China "1 inch" (一寸) and "2 inch" (二寸): print-studio sizes with no issuing authority of their own;
    # the framing is the proportional ICAO-like one (head 71–80 %, crown 7–11 % from the top).
    _proportional("1inch", "China 1 inch (一寸) 25×35 mm", 25, 35),
    _proportional("2inch", "China 2 inch (二寸) 35×49 mm", 35, 49),
    # gov.uk: "45 millimetres (mm) high by 35mm wide"; "The image of you - from the crown of your head to
    # your chin - must be between 29mm and 34mm high." No top margin or eye line: None.
    PhotoSize("uk", "UK passport 35×45 mm", 35, 45, 29, 34, source="https://www.gov.uk/photos-for-passports"),
    # EU Visa Code (Regulation (EC) No 810/2009, Art. 10(3)(c), Art. 13): the photo follows the ICAO
    # standard, i.e. 35×45 mm with chin to crown 32–36 mm as the Schengen consulates publish it.
    # No top margin or eye line: None.
    PhotoSize("schengen", "Schengen / EU visa 35×45 mm", 35, 45, 32, 36,
              source="https://eur-lex.europa.eu/eli/reg/2009/810/oj"),
    # Chinese visa (MFA Office in Hong Kong, 2016 notice; same text at the Chinese Visa Application Service
    # Centres): "Photo size: 48mm x 33mm, width of head: 15mm to 22mm, height of head: 28mm to 33mm";
    # service-centre text: "The space between the top of the head and the top of the photo should be
    # between 3mm and 5mm" and chin to bottom edge at least 7 mm.
    PhotoSize("cn-visa", "China visa 33×48 mm", 33, 48, 28, 33, top_min_mm=3, top_max_mm=5,
              source="http://www.fmcoprc.gov.hk/eng/fwxx/wgrqz/t1418248.htm"),
    # MOFA (外務省) パスポート申請用写真の規格: 縦45mm×横35mm; 顔の縦の長さ (頭頂・髪を含む～あご) 34mm±2mm;
    # 頭頂から写真上端までの余白 4mm±2mm, i.e. head 32–36 mm, top margin 2–6 mm. Eye line: None.
    PhotoSize("jp", "Japan passport 35×45 mm", 35, 45, 32, 36, top_min_mm=2, top_max_mm=6,
              source="https://www.mofa.go.jp/mofaj/toko/passport/ic_photo.html"),
    # India, printed photos for OCI / passport services at the missions: "2 inch x 2 inch (51 mm x 51 mm)",
    # "height of head should measure 1 inch to 1-3/8 inches (25 mm to 35 mm)", "eye height is between 1-1/8
    # inches to 1-3/8 inches" from the bottom (the US-style rule). Some missions state the face as 70–80 %
    # instead; passports applied for inside India are photographed at the Passport Seva Kendra.
    PhotoSize("in", "India OCI / passport abroad 2×2 in", 2 * IN, 2 * IN, 1 * IN, 1.375 * IN,
              eye_min_mm=1.125 * IN, eye_max_mm=1.375 * IN, source="https://ociservices.gov.in/"),
    # canada.ca: "50 mm wide x 70 mm high (2 inches wide x 2 3/4 inches long) and sized so the height of the
    # face measures between 31 mm (1 1/4 inches) and 36 mm (1 7/16 inches) from chin to crown of head
    # (natural top of head)". No top margin or eye line: None.
    PhotoSize("ca", "Canada passport 50×70 mm", 50, 70, 31, 36,
              source="https://www.canada.ca/en/immigration-refugees-citizenship/services/canadian-passports/photos.html"),
    # Auswärtiges Amt / Bundesdruckerei Fotomustertafel: 35×45 mm; "Die Gesichtshöhe muss 70 - 80 % des Fotos
    # einnehmen. Dies entspricht einer Höhe von 32 - 36 mm von der Kinnspitze bis zum oberen Kopfende. Dabei
    # ist das obere Kopfende unter Vernachlässigung der Frisur anzunehmen" (rejected only below 27 / above
    # 40 mm). No top margin in mm: None; the template's eye zone is not taken here: None.
    PhotoSize("de", "Germany passport / ID 35×45 mm", 35, 45, 32, 36,
              source="https://bangkok.diplo.de/th-de/service/02-PaesseAusweise/-/2448880"),
    # ANTS: "La photo doit mesurer 35mm de large sur 45mm de haut. La taille du visage doit être de 32 à
    # 36mm, du bas du menton au sommet du crâne (hors chevelure)"; "Le blanc est interdit" (background).
    PhotoSize("fr", "France passport / ID 35×45 mm", 35, 45, 32, 36,
              source="https://passeport.ants.gouv.fr/Vos-demarches/Photographie-d-identite"),
]

PRESETS: dict[str, PhotoSize] = {p.id: p for p in _PRESET_LIST}

# What a user should know that the numbers cannot say (shown in the API and the README).
PRESET_NOTES: dict[str, str] = {
    "1inch": "Studio size without an issuing authority: proportional ICAO-like framing.",
    "2inch": "Studio size without an issuing authority: proportional ICAO-like framing.",
    "ca": "Crown = natural top of the head (skull), not the top of the hair.",
    "de": "Head measured to the top of the head ignoring the hairstyle; accepted 27–40 mm.",
    "fr": "Head measured to the top of the skull without the hair; white backgrounds are refused.",
    "in": "Missions differ; some ask for the face to fill 70–80 % instead.",
    "cn-visa": "Head width 15–22 mm; chin to bottom edge at least 7 mm.",
}

_SIZE_FORMS = "a preset id ({}), or WxHmm, WxHcm, WxHin or WxHpx such as 35x45mm, 2x2in, 600x800px"
_CUSTOM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[x×*]\s*(\d+(?:\.\d+)?)\s*(mm|cm|in|inch|inches|px)\s*$", re.I)
_UNIT_MM = {"mm": 1.0, "cm": 10.0, "in": IN, "inch": IN, "inches": IN}
MIN_MM, MAX_MM, MIN_PX, MAX_PX = 5.0, 1000.0, 32, 20000


def _check_dpi(dpi: float) -> None:
    if not (isinstance(dpi, (int, float)) and math.isfinite(dpi) and 10 <= dpi <= 4800):
        raise IdPhotoError(f"DPI must be a number from 10 to 4800, not {dpi!r}")


def parse_size(text: str, dpi: float = 300) -> PhotoSize:
    """A preset id (any case) or a custom size: ``WxHmm``/``WxHcm``/``WxHin`` (decimals allowed) or ``WxHpx``.

    A ``WxHpx`` size keeps those exact pixels at any DPI; its millimetres are worked out at ``dpi``. Custom
    sizes have no authority behind them, so they get ICAO-like proportional framing: head (chin to crown)
    71–80 % of the height, crown 7–11 % of the height below the top edge, no eye-line rule. Sides must be
    5–1000 mm or 32–20000 px; anything else raises :class:`IdPhotoError` naming the accepted forms.
    """
    _check_dpi(dpi)
    key = str(text).strip().lower()
    if key in PRESETS:
        return PRESETS[key]
    forms = _SIZE_FORMS.format(", ".join(PRESETS))
    match = _CUSTOM.match(key)
    if not match:
        raise IdPhotoError(f"unknown photo size {text!r}: use {forms}")
    w, h, unit = float(match[1]), float(match[2]), match[3].lower()
    if unit == "px":
        if not (w.is_integer() and h.is_integer() and MIN_PX <= w <= MAX_PX and MIN_PX <= h <= MAX_PX):
            raise IdPhotoError(f"photo size {text!r} out of range: pixel sides must be whole numbers from "
                               f"{MIN_PX} to {MAX_PX}; use {forms}")
        wp, hp = int(w), int(h)
        return _proportional(f"{wp}x{hp}px", f"Custom {wp}×{hp} px", round(wp / dpi * IN, 3),
                             round(hp / dpi * IN, 3), width_px=wp, height_px=hp)
    wm, hm = w * _UNIT_MM[unit], h * _UNIT_MM[unit]
    if not (MIN_MM <= wm <= MAX_MM and MIN_MM <= hm <= MAX_MM):
        raise IdPhotoError(f"photo size {text!r} out of range: sides must be {MIN_MM:g}–{MAX_MM:g} mm; "
                           f"use {forms}")
    unit = "in" if unit.startswith("inch") else unit
    return _proportional(f"{w:g}x{h:g}{unit}", f"Custom {w:g}×{h:g} {unit}", round(wm, 3), round(hm, 3))


# --------------------------------------------------------------------------------------------------------
# Print papers
# --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Paper:
    id: str
    name: str
    width_mm: float     # portrait: width <= height
    height_mm: float

    def pixels(self, dpi: float, landscape: bool = False) -> tuple[int, int]:
        """(width, height) of the page in pixels at ``dpi``, portrait unless ``landscape``."""
        w, h = mm_to_px(self.width_mm, dpi), mm_to_px(self.height_mm, dpi)
        return (h, w) if landscape else (w, h)


PAPERS: dict[str, Paper] = {p.id: p for p in [
    Paper("4x6in", "4×6 in photo paper", 4 * IN, 6 * IN),
    Paper("5x7in", "5×7 in photo paper", 5 * IN, 7 * IN),
    Paper("3.5x5in", "3.5×5 in (89×127 mm) photo paper", 3.5 * IN, 5 * IN),
    Paper("6x8in", "6×8 in photo paper", 6 * IN, 8 * IN),
    Paper("10x15cm", "10×15 cm photo paper", 100, 150),
    Paper("a6", "A6 105×148 mm", 105, 148),
    Paper("a5", "A5 148×210 mm", 148, 210),
    Paper("a4", "A4 210×297 mm", 210, 297),
    Paper("letter", "US Letter 8.5×11 in", 8.5 * IN, 11 * IN),
]}
DEFAULT_PAPER = "4x6in"
MIN_PAPER_MM, MAX_PAPER_MM = 20.0, 1200.0


def parse_paper(text: str) -> Paper:
    """A paper id (any case) or a custom ``WxHin``/``WxHmm``/``WxHcm`` sheet (stored portrait);
    sides must be 20–1200 mm. Anything else raises :class:`IdPhotoError` naming the accepted forms."""
    key = str(text).strip().lower()
    if key in PAPERS:
        return PAPERS[key]
    forms = f"a paper id ({', '.join(PAPERS)}) or WxHin, WxHmm, WxHcm such as 4x6in, 100x150mm"
    match = _CUSTOM.match(key)
    if not match or match[3].lower() == "px":
        raise IdPhotoError(f"unknown paper {text!r}: use {forms}")
    w, h, unit = float(match[1]), float(match[2]), match[3].lower()
    wm, hm = sorted((w * _UNIT_MM[unit], h * _UNIT_MM[unit]))
    if not (MIN_PAPER_MM <= wm and hm <= MAX_PAPER_MM):
        raise IdPhotoError(f"paper {text!r} out of range: sides must be {MIN_PAPER_MM:g}–{MAX_PAPER_MM:g} mm; "
                           f"use {forms}")
    unit = "in" if unit.startswith("inch") else unit
    return Paper(f"{w:g}x{h:g}{unit}", f"Custom {w:g}×{h:g} {unit}", round(wm, 3), round(hm, 3))


def presets_json() -> list[dict]:
    """The presets for ``GET /api/v1/sizes``: the rule in mm, its source, a note, pixels at 300 DPI."""
    return [{"id": p.id, "name": p.name, "width_mm": round(p.width_mm, 3), "height_mm": round(p.height_mm, 3),
             **{k: (None if getattr(p, k) is None else round(getattr(p, k), 3))
                for k in ("head_min_mm", "head_max_mm", "top_min_mm", "top_max_mm", "eye_min_mm", "eye_max_mm")},
             "source": p.source, "note": PRESET_NOTES.get(p.id, ""), "pixels_300dpi": list(p.pixels(300))}
            for p in PRESETS.values()]


def papers_json() -> list[dict]:
    """The print papers: id, name, portrait size in mm, pixels at 300 DPI, which one is the default."""
    return [{"id": p.id, "name": p.name, "width_mm": round(p.width_mm, 3), "height_mm": round(p.height_mm, 3),
             "pixels_300dpi": list(p.pixels(300)), "default": p.id == DEFAULT_PAPER} for p in PAPERS.values()]
