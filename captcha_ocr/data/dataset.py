"""A folder of captcha images, labelled by file name, decoded once into memory."""

import csv
import re
import warnings
from collections.abc import Sequence
from pathlib import Path, PurePath

import torch
from torch import Tensor
from torch.utils.data import Dataset

from captcha_ocr.reading.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, load_image, not_a_regular_file
from captcha_ocr.reading.tokenizer import Tokenizer

# The whole stem is the label, except for an optional "_<number>" suffix that lets two images
# with the same text live in one folder (2b827.png, 2b827_1.png).
DEFAULT_LABEL_PATTERN = r"(?P<label>.+?)(?:_\d+)?"


MAX_LISTED = 20  # bad files named one by one in an error message


class BadSampleError(ValueError):
    """A file that cannot be a training sample; the message names the file and the reason."""


def check_label_pattern(pattern: str) -> None:
    """Raise ``ValueError`` unless ``pattern`` is a regular expression with a ``label`` group."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"label pattern {pattern!r} is not a regular expression: {error}") from error
    if "label" not in compiled.groupindex:
        raise ValueError(f"label pattern {pattern!r} has no (?P<label>...) group to take the label from")


def label_from_name(path: Path, pattern: str = DEFAULT_LABEL_PATTERN) -> str:
    """The label that a file's stem spells, by ``pattern`` (a regex with a ``label`` group)."""
    match = re.fullmatch(pattern, path.stem)
    if match is None:
        raise ValueError(f"file name does not match the label pattern {pattern!r}")
    return match.group("label")


def read_labels_csv(path: str | Path) -> dict[str, str]:
    """``file,label`` rows (a header row naming them is required) as {file name: label}. Spaces
    around a field are not part of it, and ``./226md.png`` names ``226md.png``.

    Raises:
        ValueError: A column is missing, a row has no label, or one file has two labels; the
            message names the row.
    """
    try:
        return _read_labels(path)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from error


def _read_labels(path: str | Path) -> dict[str, str]:
    with Path(path).open(newline="", encoding="utf-8-sig") as file:  # -sig: a byte-order mark is no column name
        reader = csv.DictReader(file, skipinitialspace=True)
        if reader.fieldnames is None or not {"file", "label"} <= set(reader.fieldnames):
            found = ",".join(reader.fieldnames or []) or "nothing"
            raise ValueError(f"{path}: needs a header row with the columns file,label, found {found}")
        labels: dict[str, str] = {}
        for row in reader:
            name, label = (row["file"] or "").strip(), (row["label"] or "").strip()
            name = str(PurePath(name)) if name else name
            if not name or not label:
                raise ValueError(f"{path}, line {reader.line_num}: a row needs a file and a label")
            if labels.get(name, label) != label:
                where = f"{path}, line {reader.line_num}"
                raise ValueError(f"{where}: {name} has two labels, {labels[name]!r} and {label!r}")
            labels[name] = label
    return labels


class CaptchaDataset(Dataset):
    """Captcha images held in memory as one uint8 tensor, with their labels.

    Every file is checked here, when the dataset is built, so that a bad file stops the run
    before training starts rather than half-way through an epoch.

    Args:
        files: Image files; each label comes from the file name.
        tokenizer: Checks and encodes the labels.
        height: Model input height; images of any size are resized to it.
        width: Model input width.
        label_pattern: Regex with a ``label`` group, matched against the whole file stem.
        skip_bad_files: Leave out bad files with a warning naming each (and a count) instead of
            raising on the first.
        labelled: Whether the images have labels. An unlabelled dataset (images to read) yields
            images alone.
        labels: Labels by file name (from a CSV); default: labels from the names by ``label_pattern``.
        crop_to_text: Crop each image to its text before resizing (see ``images.load_image``).
        normalize: Make the page even and the ink dark first (see ``images.load_image``).

    Raises:
        BadSampleError: Files that are not readable images or whose names are not valid labels,
            all of them named in one message (unless ``skip_bad_files``).
    """

    def __init__(
        self,
        files: Sequence[Path],
        tokenizer: Tokenizer,
        height: int,
        width: int,
        label_pattern: str = DEFAULT_LABEL_PATTERN,
        skip_bad_files: bool = False,
        labelled: bool = True,
        labels: dict[str, str] | None = None,
        crop_to_text: bool = True,
        normalize: bool = False,
    ) -> None:
        self.labelled = labelled
        self.files: list[Path] = []
        self.labels: list[str] = []
        images: list[Tensor] = []
        skipped: list[str] = []
        preparation = (height, width, crop_to_text, normalize)
        for path in files:
            try:
                label, image = self._read(path, tokenizer if labelled else None, preparation, label_pattern, labels)
            except BadSampleError as error:
                skipped.append(str(error))
                continue
            self.files.append(path)
            self.labels.append(label)
            images.append(image)
        if skipped and not skip_bad_files:
            shown = "\n  ".join(skipped[:MAX_LISTED])
            more = f"\n  ... and {len(skipped) - MAX_LISTED} more" if len(skipped) > MAX_LISTED else ""
            raise BadSampleError(
                f"{len(skipped)} bad file(s): remove or rename them (main.py fit: --data.skip_bad_files true leaves "
                f"them out):\n  {shown}{more}"
            )
        if skipped:
            warnings.warn(f"skipped {len(skipped)} bad file(s):\n" + "\n".join(skipped), stacklevel=2)
        if not images:
            raise ValueError("no valid images to build a dataset from")
        self.images = torch.stack(images)  # (N, 1, H, W) uint8
        self.targets = torch.from_numpy(tokenizer.encode(self.labels)) if labelled else None  # (N, max_length)

    @staticmethod
    def _read(
        path: Path,
        tokenizer: Tokenizer | None,
        preparation: tuple[int, int, bool, bool],
        pattern: str,
        labels: dict[str, str] | None,
    ) -> tuple[str, Tensor]:
        kind = not_a_regular_file(path)
        if kind is not None:
            raise BadSampleError(f"{path}: is {kind}, not an image file")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise BadSampleError(f"{path}: not an image file (suffix {path.suffix!r})")
        label = ""
        if tokenizer is not None:
            try:
                label = label_from_name(path, pattern) if labels is None else labels[path.name]
                tokenizer.check(label)
            except KeyError as error:
                raise BadSampleError(f"{path}: has no row in the labels CSV") from error
            except ValueError as error:
                raise BadSampleError(f"{path}: invalid label: {error}") from error
        try:
            image = torch.from_numpy(load_image(path, *preparation, max_pixels=DEFAULT_MAX_PIXELS))  # bombs: refused
        except Exception as error:  # Pillow raises OSError, SyntaxError, DecompressionBombError, ...
            raise BadSampleError(f"{path}: cannot be read as an image: {error}") from error
        return label, image

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor] | Tensor:
        """The image as floats in [0, 1], shape (1, H, W), and, if labelled, its target ids (L,)."""
        image = self.images[index].float().div_(255)
        return image if self.targets is None else (image, self.targets[index])
