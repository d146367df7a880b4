"""The studio's REST API (``/api/v1``): sizes, one ID photo, a print sheet.

Every refused request is a 4xx with ``{"error": "<one line>"}``: 400 bad
field, 413 too large, 415 not a picture, 422 the picture cannot make an ID
photo (no face, several faces, a face on its side or upside down, a size limit
that cannot be met). Requests are processed one at a time by default (:class:`idphoto.IdPhotoMaker` holds
the queue); the handlers are plain functions, so FastAPI runs them on its
worker threads and the event loop stays free.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import JSONResponse, Response

from idphoto import IdPhotoError, IdPhotoMaker, PhotoRequest, papers_json, presets_json
from idphoto.errors import FaceNotFound, PersonNotFound, PictureTurned, SeveralFaces, SizeLimitError
from idphoto.maker import Busy
from matting.errors import DownloadError, ModelUnavailable, WeightsError

from .errors import error
from .uploads import UploadError, UploadFolder, one_upload

log = logging.getLogger(__name__)


#: The server's own fault (no model to run): 503, with what to do.
MODEL_ERRORS = (WeightsError, ModelUnavailable, DownloadError)
#: Everything a studio request may be refused with (each mapped by :func:`refusal`).
ANSWERED = (IdPhotoError, UploadError, Busy, *MODEL_ERRORS)


def refusal(exc: Exception) -> JSONResponse:
    """The JSON answer to a request the studio cannot serve (see the module docstring)."""
    if isinstance(exc, Busy):
        return error(503, str(exc), headers={"Retry-After": "30"})
    if isinstance(exc, MODEL_ERRORS):
        return error(503, f"the matting model is not available: {exc}")
    return error(status_for(exc), str(exc))


def status_for(exc: Exception) -> int:
    if isinstance(exc, UploadError):
        return exc.status
    if isinstance(exc, (FaceNotFound, SeveralFaces, PersonNotFound, PictureTurned, SizeLimitError)):
        return 422  # a valid request this picture cannot satisfy
    return 400


def warning_header(warnings: list[str]) -> dict[str, str]:
    """``{"X-Warnings": "a | b"}`` (ASCII: a header holds no ×), or nothing."""
    if not warnings:
        return {}
    text = " | ".join(warnings).replace("×", "x").replace("°", " deg")
    return {"X-Warnings": text.encode("ascii", "replace").decode()}


def _number(text: str | None, name: str, kind=float):
    if text is None or str(text).strip() == "":
        return None
    try:
        value = kind(str(text).strip())
    except ValueError:
        raise IdPhotoError(f"{name} must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise IdPhotoError(f"{name} must be a number, got {text!r}")
    return value


def _dpi(text: str | None) -> float:
    value = _number(text, "dpi")
    return 300.0 if value is None else value


def studio_router(maker: IdPhotoMaker, uploads: UploadFolder) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/sizes")
    def sizes():
        """The ID-photo presets with their framing rules."""
        return presets_json()

    @router.get("/papers")
    def papers():
        """The print-sheet papers."""
        return papers_json()

    @router.post("/photo")
    def photo(image: list[UploadFile] = File(...), background: str = Form("transparent"),
              size: str | None = Form(None), dpi: str | None = Form(None), format: str | None = Form(None),
              max_kb: str | None = Form(None)):
        try:
            image = one_upload(image, "image", " (the studio page takes many)")
            request = PhotoRequest(background=background, size=size or None, dpi=_dpi(dpi),
                                   format=format or None, max_kb=_number(max_kb, "max_kb"))
            request = request.checked()  # bad fields are refused before the upload is decoded
            data, name = image.file.read(), image.filename or ""
            # decoded in its turn: waiting requests hold compressed bytes, not pixels
            result = maker.photo(lambda: uploads.read_picture(data, name), request)
        except ANSWERED as exc:
            return refusal(exc)
        headers = {"Content-Disposition": f'attachment; filename="id-photo{result.extension}"',
                   **warning_header(result.warnings)}
        return Response(result.data, media_type=result.content_type, headers=headers)

    @router.post("/sheet")
    def sheet(image: list[UploadFile] = File(...), background: str = Form("white"), size: str | None = Form(None),
              paper: str = Form("4x6in"), dpi: str | None = Form(None), format: str | None = Form(None),
              copies: str | None = Form(None), max_kb: str | None = Form(None)):
        try:
            image = one_upload(image, "image", " (the studio page takes many)")
            count = _number(copies, "copies", int)
            if count is not None and not 1 <= count <= 500:
                raise IdPhotoError(f"copies must be between 1 and 500, got {count}")
            request = PhotoRequest(background=background or "white", size=size or "passport",
                                   dpi=_dpi(dpi), format=format or "jpg", max_kb=_number(max_kb, "max_kb"))
            data, name = image.file.read(), image.filename or ""
            result = maker.sheet([lambda: uploads.read_picture(data, name)], request, paper=paper or "4x6in",
                                 copies=count)
        except ANSWERED as exc:
            return refusal(exc)
        headers = {"Content-Disposition": f'attachment; filename="print-sheet{result.extension}"',
                   "X-Copies": str(result.count), **warning_header(result.warnings)}
        return Response(result.data, media_type=result.content_type, headers=headers)

    return router
