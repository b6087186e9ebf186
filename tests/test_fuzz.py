"""Corrupted image files never end a reading run: each is read or named, the good ones are all read."""

import random
from pathlib import Path

import pytest

from captcha_ocr.cli import main as cli

from .helpers import draw_captcha, write_tiny_weights

FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WEBP"}


def corrupt(data: bytes, rng: random.Random) -> bytes:
    """One of: random byte flips, a truncation, or random bytes inserted."""
    data = bytearray(data)
    kind = rng.choice(("flip", "truncate", "insert"))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data))]
    else:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    return bytes(data)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


def test_corrupted_files_are_read_or_named_and_good_files_all_read(tiny_weights: Path, tmp_path: Path, capsys) -> None:
    rng = random.Random(0)
    folder = tmp_path / "mixed"
    folder.mkdir()
    originals = {}
    for suffix, format_name in FORMATS.items():
        path = tmp_path / f"original.{suffix}"
        draw_captcha("226md", mode="RGB").save(path, format=format_name)
        originals[suffix] = path.read_bytes()
    good = set()
    for index in range(320):
        suffix = rng.choice(list(FORMATS))
        name = f"{index:03d}.{suffix}"
        if index % 8 == 0:  # every eighth file is intact
            (folder / name).write_bytes(originals[suffix])
            good.add(str(folder / name))
        else:
            (folder / name).write_bytes(corrupt(originals[suffix], rng))
    code = cli(["read", str(folder), "--model", str(tiny_weights)])
    captured = capsys.readouterr()
    read = {line.split("\t")[0] for line in captured.out.splitlines()}
    named = {
        line.split("cannot read ")[1].split(": ")[0] for line in captured.err.splitlines() if "cannot read" in line
    }
    assert good <= read  # every intact file is read
    assert len(read) + len(named) == 320 and not read & named  # every file is read or named, once
    assert "Traceback" not in captured.err
    assert len(named) > 100  # the corruptions do break files (so the test tests something)
    assert code == 1


def test_a_decompression_bomb_is_named_and_the_rest_read(
    tiny_weights: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from PIL import Image

    draw_captcha("226md").save(tmp_path / "good.png")
    Image.new("L", (3000, 3000), 255).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # Pillow raises above twice this
    code = cli(["read", str(tmp_path / "bomb.png"), str(tmp_path / "good.png"), "--model", str(tiny_weights)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith(str(tmp_path / "good.png"))
    assert "bomb.png" in captured.err and "Traceback" not in captured.err
