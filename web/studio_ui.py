"""The browser UI (Gradio): the ID-photo studio tab, and the Live tab when a live run is attached.

Each click is queued (one picture at a time by default; Gradio shows the
queue position) and runs :class:`idphoto.IdPhotoMaker`, the same code as the
REST API and the command line. Problems are shown in plain words under the
result, never as a stack trace. Results are written into the server's
temporary folder for download (one file, or a zip for a batch).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

from idphoto import IdPhotoError, IdPhotoMaker, PhotoRequest, papers_json, presets_json
from idphoto.maker import Busy

from .studio_api import MODEL_ERRORS
from .uploads import UploadError, UploadFolder, safe_stem

log = logging.getLogger(__name__)

BACKGROUNDS = ["white", "blue", "red", "green", "custom colour", "picture", "blur", "transparent"]
MODES = ["ID photo", "Cut-out (transparent PNG)"]
CUSTOM = "custom"
#: Results (people's photos) stay downloadable this long; Gradio's cached uploads likewise.
RESULTS_KEPT_S = 3600

CSS = """
#message p { font-size: 1.05em; }
.live-frame iframe { width: 100%; height: 900px; border: 0; }
"""


def _rgb(image: np.ndarray) -> np.ndarray:
    """BGR(A) -> RGB(A) for showing in the browser."""
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _file_path(value) -> str:
    """The path of a file Gradio handed over: as it arrived (a dict with ``path``), as Gradio
    makes it (an object with ``name``), or a plain path (tests)."""
    if isinstance(value, dict):
        return str(value.get("path") or "")
    return str(getattr(value, "name", value))


def _file_name(value) -> str:
    """The name the user's file had (Gradio keeps it as ``orig_name``)."""
    if isinstance(value, dict) and value.get("orig_name"):
        return Path(str(value["orig_name"])).name
    return Path(_file_path(value)).name


def _dpi(value) -> float:
    """The DPI field: empty means 300; anything else is checked by :class:`PhotoRequest` (0 was taken as 300)."""
    return 300.0 if value is None or value == "" else _number(value, "DPI")


def _max_kb(value) -> float | None:
    return _number(value, "max KB") if value else None


def _number(value, name: str) -> float:
    """A number field's value (the page sends numbers; Gradio's API can be sent anything)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise IdPhotoError(f"{name} must be a number, got {str(value)[:40]!r}") from None


def mode_controls(mode: str) -> tuple[dict, dict, dict, dict]:
    """What the "Make" choice does to the size, background and format controls and the button: a
    cut-out is the whole picture, transparent, PNG (they were left to choose, and silently ignored)."""
    import gradio as gr

    id_photo = mode == MODES[0]
    return (gr.update(interactive=id_photo),
            gr.update(interactive=id_photo, value="white" if id_photo else "transparent"),
            gr.update(interactive=id_photo, value="jpg" if id_photo else "png"),
            gr.update(value="Make ID photo" if id_photo else "Make cut-out"))


class StudioActions:
    """What the studio's buttons do; plain methods, so tests can call them without a browser."""

    def __init__(self, maker: IdPhotoMaker, uploads: UploadFolder):
        self.maker, self.uploads = maker, uploads

    def _read(self, value) -> np.ndarray:
        """An uploaded file Gradio handed over: it must lie in the server's upload folder (never a
        path a client named), and passes the same checks as the REST API's uploads (the header
        first: the buttons take Gradio's files as they arrived, undecoded, so a picture of 144
        megapixels is refused from its header instead of being decoded by Gradio first)."""
        path = Path(_file_path(value)).resolve()
        if not path.is_relative_to(self.uploads.path.resolve()):
            raise UploadError("that file was not uploaded to this server", 403)
        return self.uploads.read_picture_file(path)

    def _inputs(self, files, webcam) -> list[tuple[str, np.ndarray | None, str | None]]:
        """(name, picture or None, error or None) for every upload and the webcam shot."""
        items = []
        for f in [*(files or []), *([webcam] if webcam else [])]:
            name = "webcam.jpg" if f is webcam else _file_name(f)
            try:
                items.append((name, self._read(f), None))
            except UploadError as exc:
                items.append((name, None, str(exc)))
        return items

    def _background(self, background: str, bg_picture) -> np.ndarray | None:
        if background != "picture":
            return None
        if not bg_picture:
            raise IdPhotoError("add a background picture (or choose another background)")
        try:
            return self._read(bg_picture)
        except UploadError as exc:
            raise IdPhotoError(f"background picture: {exc}") from None

    def _request(self, mode, background, color, size, custom, dpi, fmt, max_kb) -> PhotoRequest:
        if mode == MODES[1]:
            return PhotoRequest(background="transparent", size=None, dpi=_dpi(dpi), format="png",
                                max_kb=_max_kb(max_kb))
        chosen = color if background == "custom colour" else background
        if background == "picture":
            chosen = "white"  # replaced by the picture
        size_value = (custom or "").strip() if size == CUSTOM else size
        if size == CUSTOM and not size_value:
            raise IdPhotoError("type a custom size such as 35x45mm or 600x800px")
        return PhotoRequest(background=chosen or "white", size=size_value or None, dpi=_dpi(dpi),
                            format=fmt, max_kb=_max_kb(max_kb))

    def _folder(self) -> Path:
        """A new folder for one click's results; results older than an hour are removed."""
        results = self.uploads.path / "results"
        if results.is_dir():
            cutoff = time.time() - RESULTS_KEPT_S
            for old in results.iterdir():
                try:
                    if old.stat().st_mtime < cutoff:
                        shutil.rmtree(old, ignore_errors=True)
                except OSError:
                    pass
        folder = results / secrets.token_hex(6)
        folder.mkdir(parents=True)
        return folder

    def make(self, files, webcam, mode, background, color, bg_picture, size, custom, dpi, fmt, max_kb, guides):
        """-> (preview RGB(A), download path(s), message markdown, previews with and without guides)."""
        preview, download, message, previews = self._make(files, webcam, mode, background, color, bg_picture,
                                                         size, custom, dpi, fmt, max_kb)
        return (previews[bool(guides)] if previews else None), download, message, previews

    @staticmethod
    def show_guides(guides, previews):
        """The guides checkbox: swap the preview, without making the photo again."""
        return previews[bool(guides)] if previews else None

    def _make(self, files, webcam, mode, background, color, bg_picture, size, custom, dpi, fmt, max_kb):
        items = self._inputs(files, webcam)
        if not items:
            return (None, None, "**Add a photo first:** upload one or more pictures, or take one with the webcam.",
                    None)
        try:
            request = self._request(mode, background, color, size, custom, dpi, fmt, max_kb)
            request.checked()
            back = self._background(background, bg_picture) if mode == MODES[0] else None
        except IdPhotoError as exc:
            return None, None, f"**Cannot start:** {exc}", None
        folder, written, failed, notes, preview = self._folder(), [], [], [], None
        for name, picture, problem in items:
            if problem is None:
                try:
                    result = self.maker.photo(picture, PhotoRequest(**vars(request)), background_image=back)
                except (IdPhotoError, UploadError) as exc:
                    problem = str(exc)
                except Busy as exc:
                    return None, None, f"**The studio is busy:** {exc}; try again in a minute.", None
                except MODEL_ERRORS as exc:
                    return None, None, f"**The matting model is not available:** {exc}", None
            if problem is not None:
                failed.append(f"{name}: {problem}")
                continue
            label = "cutout" if request.size is None else safe_stem(request.size)
            stem = safe_stem(name, letters="any", fallback="photo")
            target, n = folder / f"{stem}-{label}{result.extension}", 2
            # two uploads with one name (from different folders), or names that differ in case only
            # (a.jpg, A.jpg: one file once unzipped on Windows or macOS): keep both
            while target.name.lower() in {p.name.lower() for p in written}:
                target, n = folder / f"{stem}-{n}-{label}{result.extension}", n + 1
            target.write_bytes(result.data)
            written.append(target)
            notes += [f"{name}: {w}" for w in result.warnings if f"{name}: {w}" not in notes]
            if preview is None:
                preview = {True: _rgb(result.preview(True)), False: _rgb(result.preview(False))}
                h, w = result.image.shape[:2]
                size_note = f"{w}×{h} px at {result.dpi:g} DPI, {len(result.data) / 1024:.0f} KB"
        download = None
        if len(written) == 1:
            download = str(written[0])
        elif written:
            download = str(folder / "id-photos.zip")
            with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in written:
                    archive.write(path, path.name)
        lines = []
        if written:
            lines.append(f"**Done:** {len(written)} of {len(items)} photo{'s' if len(items) > 1 else ''} "
                         f"({size_note}).")
        if failed:
            lines.append("**Could not make:** " + "; ".join(failed))
        lines += [f"Note: {n}" for n in notes]
        return None, download, "\n\n".join(lines), preview

    def sheet(self, files, webcam, mode, background, color, bg_picture, size, custom, dpi, fmt, max_kb, paper):
        inputs = self._inputs(files, webcam)
        items = [(n, p) for n, p, problem in inputs if problem is None]
        problems = [f"{n}: {problem}" for n, _, problem in inputs if problem]
        if not items:
            return None, None, "**Add a photo first**" + (": " + "; ".join(problems) if problems else "."), None
        try:
            request = self._request(MODES[0], background, color, size, custom, dpi, fmt, max_kb)
            back = self._background(background, bg_picture)
            result = self.maker.sheet([p for _, p in items], request, paper=paper, background_image=back,
                                       names=[n for n, _ in items])
        except (IdPhotoError, UploadError) as exc:
            return None, None, f"**Could not make the sheet:** {exc}", None
        except Busy as exc:
            return None, None, f"**The studio is busy:** {exc}; try again in a minute.", None
        except MODEL_ERRORS as exc:
            return None, None, f"**The matting model is not available:** {exc}", None
        target = self._folder() / f"print-sheet-{safe_stem(paper)}{result.extension}"
        target.write_bytes(result.data)
        h, w = result.image.shape[:2]
        lines = [f"**Sheet:** {result.count} cop{'y' if result.count == 1 else 'ies'} on {paper} "
                 f"({w}×{h} px at {result.dpi:g} DPI). Print at 100% (no scaling) so the sizes stay exact."]
        lines += [f"Note: {n}" for n in result.warnings] + [f"Skipped {p}" for p in problems]
        shown = _rgb(result.image)
        return shown, str(target), "\n\n".join(lines), {True: shown, False: shown}


def build_studio(maker: IdPhotoMaker, uploads: UploadFolder, live_panel: bool = False):
    import gradio as gr

    actions = StudioActions(maker, uploads)
    sizes = [(p["name"], p["id"]) for p in presets_json()]
    papers = [(p["name"], p["id"]) for p in papers_json()]
    with gr.Blocks(title="modnet-live studio", analytics_enabled=False,
                   delete_cache=(600, RESULTS_KEPT_S)) as blocks:
        gr.HTML(f"<style>{CSS}</style>")
        with gr.Tabs():
            with gr.Tab("ID photo studio", id="studio"):
                with gr.Row():
                    with gr.Column(scale=1):
                        files = gr.File(label="Photos (one or many)", file_count="multiple", file_types=["image"],
                                        elem_id="photos")
                        webcam = gr.Image(label="…or take one with the webcam", sources=["webcam"], type="filepath",
                                          elem_id="webcam", height=240)
                        mode = gr.Radio(MODES, value=MODES[0], label="Make", elem_id="mode")
                        background = gr.Radio(BACKGROUNDS, value="white", label="Background", elem_id="background")
                        color = gr.ColorPicker(value="#4a90d9", label="Custom colour", visible=False,
                                               elem_id="color")
                        bg_picture = gr.Image(label="Background picture", type="filepath", sources=["upload"],
                                              visible=False, elem_id="bg-picture", height=160)
                        size = gr.Dropdown(sizes + [("Custom size…", CUSTOM)], value="passport", label="Size",
                                           elem_id="size")
                        custom = gr.Textbox(label="Custom size", placeholder="35x45mm, 2x2in or 600x800px",
                                            visible=False, elem_id="custom-size")
                        with gr.Row():
                            dpi = gr.Number(value=300, label="DPI", precision=0, minimum=72, maximum=1200,
                                            elem_id="dpi")
                            fmt = gr.Radio(["jpg", "png"], value="jpg", label="Format", elem_id="format")
                            max_kb = gr.Number(value=0, label="Max file size (KB, 0: no limit)", minimum=0,
                                               elem_id="max-kb")
                        guides = gr.Checkbox(value=True, label="Show head-height and eye-line guides "
                                                               "(preview only)", elem_id="guides")
                        make = gr.Button("Make ID photo", variant="primary", elem_id="make")
                        with gr.Row():
                            paper = gr.Dropdown(papers, value="4x6in", label="Print sheet paper", elem_id="paper")
                            sheet = gr.Button("Make print sheet", elem_id="sheet")
                    with gr.Column(scale=1):
                        preview = gr.Image(label="Result", type="numpy", interactive=False, format="png",
                                           elem_id="result")
                        download = gr.File(label="Download", elem_id="download", interactive=False)
                        message = gr.Markdown(elem_id="message")
            if live_panel:
                with gr.Tab("Live", id="live"):
                    gr.HTML('<div class="live-frame"><iframe src="/live" title="Live control"></iframe></div>')

        background.change(lambda b: (gr.update(visible=b == "custom colour"), gr.update(visible=b == "picture")),
                          background, [color, bg_picture], queue=False)
        size.change(lambda s: gr.update(visible=s == CUSTOM), size, custom, queue=False)
        mode.change(mode_controls, mode, [size, background, fmt, make], queue=False)
        previews = gr.State(None)
        common = [files, webcam, mode, background, color, bg_picture, size, custom, dpi, fmt, max_kb]
        # preprocess=False: the files as uploaded, unopened (StudioActions._read checks them first)
        make.click(actions.make, common + [guides], [preview, download, message, previews], concurrency_limit=1,
                   api_name="make", preprocess=False)
        guides.change(actions.show_guides, [guides, previews], preview, queue=False)
        sheet.click(actions.sheet, common + [paper], [preview, download, message, previews], concurrency_limit=1,
                    api_name="sheet", preprocess=False)
    blocks.queue(default_concurrency_limit=1, max_size=64)
    return blocks
