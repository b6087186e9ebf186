"""Shared fixtures: small captcha folders drawn by the tests, and the real data set's location."""

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from .helpers import REAL_DATA, draw_captcha


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reads captcha_images_v2 is marked ``real_data``."""
    for item in items:
        if "real_data" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_data)


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write one drawn image per label into a new folder and return the folder."""

    def make(labels: Sequence[str], name: str = "images") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        for label in labels:
            draw_captcha(label).save(folder / f"{label}.png")
        return folder

    return make


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"captcha_images_v2 is not at {REAL_DATA} (set CAPTCHA_OCR_DATA to its folder)")
    return REAL_DATA
