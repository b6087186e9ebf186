"""Where a data folder comes from when it is not there yet, and what a folder's labels hold:
the download of captcha_images_v2 and the alphabet of a folder's labels."""

import os
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from captcha_ocr.data.dataset import label_from_name
from captcha_ocr.reading.images import is_image_file
from captcha_ocr.reading.listing import image_files

CAPTCHA_IMAGES_V2_URL = "https://github.com/AakashKumarNain/CaptchaCracker/raw/master/captcha_images_v2.zip"
DATA_VARIABLE = "CAPTCHA_OCR_DATA"


def find_data_dir(checkout: Path) -> Path:
    """Where captcha_images_v2 is for the tests, benchmarks and notebook of a checkout: the folder
    named by ``$CAPTCHA_OCR_DATA`` when set; else ``data/captcha_images_v2`` of the checkout (where
    ``make train`` puts it) or ``../shared/data/captcha_images_v2`` beside it, the first that exists
    (the former when neither does)."""
    if os.environ.get(DATA_VARIABLE):
        return Path(os.environ[DATA_VARIABLE])
    candidates = [checkout / "data" / "captcha_images_v2", checkout.parent / "shared" / "data" / "captcha_images_v2"]
    return next((folder for folder in candidates if folder.is_dir()), candidates[0])


def labelled_files(
    data_dir: str | Path, label_pattern: str, labels: dict[str, str] | None = None
) -> list[tuple[Path, str]]:
    """Each labelled image of a folder with its label: from ``labels`` (file name: label) if
    given, only for files that are in the folder, else from the image files' names.

    Raises:
        ValueError: A file name that is not a label, naming the file.
    """
    folder = Path(data_dir)
    if labels is not None:  # rows for files that are not in the folder say nothing about it
        return [(folder / name, label) for name, label in labels.items() if (folder / name).is_file()]
    pairs = []
    for path in image_files(folder):
        try:
            pairs.append((path, label_from_name(path, label_pattern)))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    return pairs


def folder_labels(data_dir: str | Path, label_pattern: str, labels: dict[str, str] | None = None) -> list[str]:
    """The labels of a folder's images (see ``labelled_files``)."""
    return [label for _, label in labelled_files(data_dir, label_pattern, labels)]


def charset_of_labels(data_dir: str, label_pattern: str, labels: dict[str, str] | None = None) -> str:
    """The sorted characters of a folder's labels: from ``labels`` if given, else from file names."""
    try:
        texts = folder_labels(data_dir, label_pattern, labels)
    except ValueError as error:
        raise ValueError(f"--data.charset auto: {error}") from error
    return "".join(sorted(set("".join(texts))))


def download_folder(url: str, target: Path, expected_files: int = 0) -> None:
    """Fetch a zip archive and unpack the one folder of images it holds as ``target``.

    Raises:
        OSError: The download failed, or the archive held no images, or not
            ``expected_files`` of them (then ``target`` is removed again).
    """
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "archive.zip"
        try:
            urllib.request.urlretrieve(url, archive)
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(Path(scratch) / "unpacked")
        except (OSError, zipfile.BadZipFile) as error:
            raise OSError(
                f"could not download the data from {url} ({error}); "
                f"fetch it by hand and pass its folder as --data.data_dir"
            ) from error
        folders = [p.parent for p in (Path(scratch) / "unpacked").rglob("*") if is_image_file(p)]
        if not folders:
            raise OSError(f"the archive at {url} holds no images")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(max(set(folders), key=folders.count)), target)
    count = len(image_files(target))
    if expected_files and count != expected_files:
        shutil.rmtree(target)
        raise OSError(
            f"the archive at {url} held {count} images, expected {expected_files}; "
            f"removed {target}, download it by hand or pass --data.data_dir"
        )
