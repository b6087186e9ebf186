import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from captcha_ocr.data.dataset import BadSampleError, CaptchaDataset, label_from_name
from captcha_ocr.reading.listing import list_files
from captcha_ocr.reading.tokenizer import Tokenizer

from .helpers import draw_captcha


def build(folder: Path, **kwargs) -> CaptchaDataset:
    return CaptchaDataset(list_files(folder), Tokenizer(), 32, 128, **kwargs)


def test_labels_come_from_file_names_and_images_are_resized(make_folder) -> None:
    dataset = build(make_folder(["226md", "nnn2b", "bcdef"]))
    assert dataset.labels == ["226md", "bcdef", "nnn2b"]  # sorted by name
    image, target = dataset[0]
    assert image.shape == (1, 32, 128) and image.dtype == torch.float32
    assert 0 <= image.min() < 0.3 and 0.8 < image.max() <= 1  # dark text on light ground survives
    assert Tokenizer().decode(target[None]) == ["226md"]


@pytest.mark.parametrize(("stem", "label"), [("226md", "226md"), ("226md_1", "226md"), ("226md_12", "226md")])
def test_numbered_suffix_is_not_part_of_the_label(stem: str, label: str) -> None:
    assert label_from_name(Path(f"{stem}.png")) == label


def test_real_data_set_builds_with_every_label(real_data: Path) -> None:
    dataset = CaptchaDataset(list_files(real_data), Tokenizer(), 32, 128)
    assert len(dataset) == 1040
    assert dataset.images.shape == (1040, 1, 32, 128)
    assert [f.stem for f in dataset.files] == dataset.labels


def write_bad(folder: Path, case: str) -> Path:
    if case == "zero_bytes":
        path = folder / "2345y.png"
        path.write_bytes(b"")
    elif case == "truncated":
        path = folder / "2345y.png"
        draw_captcha("2345y").save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif case == "random_bytes":
        path = folder / "2345y.png"
        path.write_bytes(os.urandom(500))
    elif case == "text_as_png":
        path = folder / "2345y.png"
        path.write_text("not an image")
    elif case == "folder_named_png":
        path = folder / "2345y.png"
        path.mkdir()
    elif case == "wrong_suffix":
        path = folder / "2345y.txt"
        path.write_text("hello")
    elif case == "bad_character":
        path = folder / "2345A.png"
        draw_captcha("2345A").save(path)
    elif case == "wrong_length":
        path = folder / "2345.png"
        draw_captcha("2345").save(path)
    return path


BAD_CASES = {
    "zero_bytes": "cannot be read as an image",
    "truncated": "cannot be read as an image",
    "random_bytes": "cannot be read as an image",
    "text_as_png": "cannot be read as an image",
    "folder_named_png": "is a folder",
    "wrong_suffix": "not an image file",
    "bad_character": "outside the charset: 'A'",
    "wrong_length": "has 4 characters, expected 5",
}


@pytest.mark.parametrize(("case", "message"), BAD_CASES.items())
def test_bad_file_fails_at_build_time_naming_file_and_problem(make_folder, case: str, message: str) -> None:
    folder = make_folder(["226md", "bcdef"])
    bad = write_bad(folder, case)
    with pytest.raises(BadSampleError, match=message) as error:
        build(folder)
    assert str(bad) in str(error.value)


def test_bad_files_can_be_skipped_with_a_warning_naming_each(make_folder) -> None:
    folder = make_folder(["226md", "bcdef"])
    bad = [write_bad(folder, "wrong_length"), write_bad(folder, "bad_character")]
    with pytest.warns(UserWarning, match="skipped 2 bad file") as record:
        dataset = build(folder, skip_bad_files=True)
    assert dataset.labels == ["226md", "bcdef"]
    assert all(str(path) in str(record[0].message) for path in bad)


def test_missing_and_empty_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_files(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        list_files(tmp_path / "empty")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "I;16"])
def test_any_image_mode_becomes_the_same_grey_input(make_folder, mode: str) -> None:
    folder = make_folder([])
    source = draw_captcha("226md", mode="L")
    if mode == "I;16":  # 16-bit grey spans 0-65535
        converted = Image.fromarray(np.asarray(source).astype(np.uint16) * 257)
    else:
        converted = source.convert(mode)
    converted.save(folder / ("226md.jpg" if mode == "CMYK" else "226md.png"))
    image, _ = build(folder)[0]
    reference, _ = build(make_folder(["226md"], name="reference"))[0]
    tolerance = 0.08 if mode in ("P", "CMYK") else 0.01  # palette and JPEG are lossy
    assert (image - reference).abs().mean() < tolerance


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A small PNG file whose header says ``width`` x ``height`` (a decompression bomb's shape)."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(bytes(width + 1) * 64)  # a few rows; the rest would be zeros too
    idat = struct.pack(">I", len(data)) + b"IDAT" + data + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + ihdr + idat)
    return path


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(make_folder) -> None:
    folder = make_folder(["226md", "bcdef"])
    bomb = bomb_png(folder / "bcd22.png", 13_000, 13_000)
    with pytest.raises(BadSampleError, match="13000 x 13000 pixels, over the limit") as error:
        build(folder)
    assert str(bomb) in str(error.value) and "remove or rename" in str(error.value)


def test_errors_below_the_command_line_keep_their_cause(tmp_path: Path) -> None:
    """The library names the problem and keeps the exception it came from (only the CLI and the
    server's answers drop it); a truncated weights file, a bad label pattern."""
    import re

    from captcha_ocr.data.dataset import check_label_pattern
    from captcha_ocr.model.checkpoint import load_model

    with pytest.raises(ValueError, match="not a regular expression") as raised:
        check_label_pattern("(?P<label>")
    assert isinstance(raised.value.__cause__, re.error)
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.raises(ValueError, match="not a readable torch file") as raised:
        load_model(truncated)
    assert raised.value.__cause__ is not None
