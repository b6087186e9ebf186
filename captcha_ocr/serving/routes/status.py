"""Whether the server is up, and the page that reads a captcha in the browser."""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from captcha_ocr.serving.schemas import Status

router = APIRouter(tags=["status"])


@router.get("/healthz")
async def healthz() -> Status:
    """200 whenever the server answers: the model is loaded before it accepts any request."""
    return Status(status="ok")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> str:
    return resources.files("captcha_ocr.serving").joinpath("static/index.html").read_text()
