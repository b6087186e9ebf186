"""Which files of a folder are read: one policy for the data set, ``train`` and ``read``. Entries
are sorted by name; hidden ones (a name starting with ".") are left out, with everything under
a hidden folder."""

from collections.abc import Sequence
from pathlib import Path

from captcha_ocr.reading.images import IMAGE_SUFFIXES, is_image_file, not_a_regular_file


def visible_entries(folder: Path, recursive: bool = False) -> list[Path]:
    """The entries of ``folder`` (with ``recursive``, of its subfolders too), sorted, hidden ones
    and those under a hidden folder left out."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def list_files(data_dir: str | Path) -> list[Path]:
    """The visible entries of a data folder (a data set names every entry that is not a valid
    sample as a bad file).

    Raises:
        FileNotFoundError: The folder does not exist or is not a folder.
        ValueError: The folder holds no files.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {str(folder)!r} does not exist or is not a folder")
    files = visible_entries(folder)
    if not files:
        raise ValueError(f"data folder {str(folder)!r} is empty")
    return files


def image_files(data_dir: str | Path) -> list[Path]:
    """The image files of a data folder (``images.IMAGE_SUFFIXES``), sorted by name."""
    return [path for path in list_files(data_dir) if is_image_file(path)]


def expand_inputs(paths: Sequence[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Files as given; folders as their visible image files, sorted by name (with ``recursive``,
    those of their subfolders too). Returns the files to read and, for each entry of a folder
    left out that a user may have meant to read, what it is: a subfolder, an empty folder, or an
    entry named like an image that is not a regular file (a FIFO, a broken or looping link)."""
    files: list[Path] = []
    skipped: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append(path)
            continue
        entries = visible_entries(path, recursive)
        files += [p for p in entries if is_image_file(p)]
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                if not recursive:
                    skipped.append(f"{entry} (a subfolder: --recursive reads it)")
                elif not visible_entries(entry):
                    skipped.append(f"{entry} (an empty folder)")
            elif entry.suffix.lower() in IMAGE_SUFFIXES and (kind := not_a_regular_file(entry)):
                skipped.append(f"{entry} ({kind})")
    return files, skipped
