"""One listing policy for the data set, ``train`` and ``read``: sorted, hidden entries left out."""

from pathlib import Path

import pytest

from captcha_ocr.reading.listing import expand_inputs, image_files, list_files

from .helpers import draw_captcha


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two images, a hidden one, one in a hidden folder, one in a subfolder, a text file."""
    root = tmp_path / "images"
    for relative in ("b2c3d.png", "a2b3c.png", ".hidden.png", ".cache/x4y5z.png", "sub/c3d4e.png"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        draw_captcha(Path(relative).stem.lstrip(".")[:5]).save(root / relative)
    (root / "notes.txt").write_text("not an image")
    return root


def test_the_data_set_and_read_list_the_same_images(folder: Path) -> None:
    assert [p.name for p in image_files(folder)] == ["a2b3c.png", "b2c3d.png"]
    files, skipped = expand_inputs([str(folder)])
    assert files == image_files(folder)
    assert skipped == [f"{folder / 'sub'} (a subfolder: --recursive reads it)"]
    files, skipped = expand_inputs([str(folder)], recursive=True)
    assert [p.relative_to(folder).as_posix() for p in files] == ["a2b3c.png", "b2c3d.png", "sub/c3d4e.png"]
    assert skipped == []


def test_a_file_given_by_name_is_read_even_when_hidden(folder: Path) -> None:
    assert expand_inputs([str(folder / ".hidden.png")])[0] == [folder / ".hidden.png"]


def test_a_data_folder_that_is_missing_or_holds_only_hidden_entries_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_files(tmp_path / "nowhere")
    (tmp_path / "dotted").mkdir()
    (tmp_path / "dotted" / ".DS_Store").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        list_files(tmp_path / "dotted")
