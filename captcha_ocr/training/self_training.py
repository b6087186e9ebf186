"""Self-training on unlabelled images of the style: ``captcha-ocr train DIR --unlabelled MORE``.

Each round, the current model reads every unlabelled image once as it is and ``VIEWS`` times
under the training augmentation policy; a reading becomes a pseudo-label when its confidence is
above the threshold chosen on the out-of-fold readings and every augmented view reads the same
text. A new model trains, from the same start, on the labels and the pseudo-labels, and reads
the next round's.
"""

import csv
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from captcha_ocr.data.dataset import CaptchaDataset
from captcha_ocr.reading.listing import image_files
from captcha_ocr.training.system import CaptchaSystem

VIEWS = 2  # augmented readings that must agree with the plain one
Fit = Callable[[Path, Path, str], CaptchaSystem]  # (folder, labels CSV, run name) -> trained system


@torch.inference_mode()
def pseudo_labels(
    system: CaptchaSystem, augmentation: nn.Module | None, files: list[Path], threshold: float
) -> dict[Path, str]:
    """The readings of ``files`` confident above ``threshold`` and unchanged in ``VIEWS``
    augmented views; images that cannot be read are left out."""
    hp = system.hparams
    dataset = CaptchaDataset(files, system.tokenizer, hp.height, hp.width, skip_bad_files=True, labelled=False,
                             crop_to_text=hp.crop_to_text, normalize=hp.normalize)  # fmt: skip
    system.eval()
    lengths = system.tokenizer.lengths
    kept: dict[Path, str] = {}
    start = 0
    for images in DataLoader(dataset, batch_size=128):  # (B, 1, H, W)
        plain = system.decoder.read_constrained(system(images).float().numpy(), lengths)
        agree = plain.fits & (plain.confidences >= threshold)
        for augment in [augmentation] * VIEWS if augmentation is not None else []:
            view = system.decoder.read_constrained(system(augment(images)).float().numpy(), lengths)
            agree &= [a == b for a, b in zip(view.texts, plain.texts, strict=True)]
        for offset in agree.nonzero()[0]:
            kept[dataset.files[start + offset]] = plain.texts[offset]
        start += len(images)
    return kept


def write_training_folder(folder: Path, labelled: dict[Path, str]) -> Path:
    """Links to every image under a name of its own, and their labels as ``labels.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (path, label) in enumerate(labelled.items()):
        link = folder / f"{index:06d}{path.suffix.lower()}"
        link.unlink(missing_ok=True)
        link.symlink_to(path.resolve())
        rows.append((link.name, label))
    table = folder / "labels.csv"
    with table.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("file", "label"), *rows])
    return table


def self_train(
    system: CaptchaSystem,
    augmentation: nn.Module | None,
    labels: dict[Path, str],
    unlabelled: Path,
    out: Path,
    threshold: float,
    rounds: int,
    fit: Fit,
) -> tuple[CaptchaSystem, list[int]]:
    """``rounds`` of pseudo-labelling ``unlabelled`` and training on ``labels`` and them.

    Returns:
        The last round's model and the number of pseudo-labels each round trained on.
    """
    files = image_files(unlabelled)
    if not files:
        raise ValueError(f"{unlabelled}: no image files to self-train on")
    kept_per_round = []
    for round_number in range(1, rounds + 1):
        kept = pseudo_labels(system, augmentation, files, threshold)
        kept_per_round.append(len(kept))
        print(f"self-training round {round_number}/{rounds}: {len(kept)} of {len(files)} unlabelled images read "
              f"with confidence above {threshold:.4f}, unchanged in {VIEWS} augmented views", flush=True)  # fmt: skip
        if not kept:
            break
        folder = out / "self_training" / f"round{round_number}"
        table = write_training_folder(folder, {**labels, **kept})
        system = fit(folder, table, f"round{round_number}")
    return system, kept_per_round
