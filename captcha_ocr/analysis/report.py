"""Write an error-analysis report: CSV tables and PNG figures.

    captcha-ocr report --predictions results/crnn_oof.csv --data-dir ../shared/data/captcha_images_v2 \\
        --out reports/crnn
    captcha-ocr report --checkpoint best.ckpt --part test --data-dir ... --out reports/fold0
"""

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from captcha_ocr.analysis.errors import (
    confusion_matrix,
    confusions,
    error_rate_by_character,
    error_rate_by_position,
    summary,
    worst,
)
from captcha_ocr.analysis.figures import confusion_figure, error_rate_figure, worst_images_grid
from captcha_ocr.analysis.results import ImageResult, read_image_results, write_image_results
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.model.checkpoint import load_model, stored_data_hparams
from captcha_ocr.model.network import ModelSpec
from captcha_ocr.training.evaluation import evaluate

SPLIT_ARGUMENTS = ("fold", "num_folds", "val_fraction", "split_seed", "label_pattern", "labels_csv", "train_size")


def evaluate_checkpoint(
    path: Path, data_dir: str | Path, part: str, fold: int | None = None
) -> tuple[list[ImageResult], ModelSpec]:
    """Per-image results of a model on one part ("train", "val", "test") of its own split.

    The split (folds, validation share, seeds, label pattern) is the one stored in a Lightning
    checkpoint, so a model is measured on the images it was held out from; a slim weights file
    stores no split and gets the default one. ``fold`` overrides the stored fold.
    """
    model, spec = load_model(path)
    split = {k: v for k, v in stored_data_hparams(path).items() if k in SPLIT_ARGUMENTS}
    if fold is not None:
        split["fold"] = fold
    data = CaptchaDataModule(str(data_dir), spec.charset, spec.min_length, spec.max_length, spec.height, spec.width,
                             crop_to_text=spec.crop_to_text, normalize=spec.normalize, **split)  # fmt: skip
    data.setup("test")
    return evaluate(model, spec.tokenizer(), data.loader(part), data.files(part), fold=data.hparams.fold), spec


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def write_report(results: list[ImageResult], data_dir: Path, out: Path, charset: str, k: int = 16) -> dict:
    """Write tables and figures of ``results`` into ``out``; returns the summary numbers."""
    out.mkdir(parents=True, exist_ok=True)
    write_image_results(out / "per_image.csv", results)
    for by in ("loss", "cer"):
        chosen = worst(results, k, by)
        write_image_results(out / f"worst_by_{by}.csv", chosen)
        figure = worst_images_grid(chosen, [data_dir / r.file for r in chosen], title=f"Worst {k} by {by}")
        figure.savefig(out / f"worst_by_{by}.png", dpi=110)
    counts = confusions(results)
    write_csv(out / "confusions.csv", ["true", "predicted", "count"], [[*pair, n] for pair, n in counts.most_common()])
    matrix = confusion_matrix(results, charset)
    np.savetxt(out / "confusion_matrix.csv", matrix, fmt="%d", delimiter=",", header=",".join([*charset, "∅"]))
    confusion_figure(matrix, charset).savefig(out / "confusion_matrix.png", dpi=110)
    by_position, by_character = error_rate_by_position(results), error_rate_by_character(results)
    write_csv(out / "errors_by_position.csv", ["position", "error_rate"], [[i + 1, v] for i, v in by_position.items()])
    write_csv(out / "errors_by_character.csv", ["character", "error_rate"], list(by_character.items()))
    error_rate_figure(by_position, by_character).savefig(out / "error_rates.png", dpi=110)
    numbers = summary(results)
    (out / "summary.json").write_text(json.dumps(numbers, indent=2) + "\n")
    return numbers


def results_to_report(
    predictions: Path | None = None,
    checkpoint: Path | None = None,
    data_dir: Path | None = None,
    part: str = "test",
    fold: int | None = None,
    charset: str | None = None,
) -> tuple[list[ImageResult], str]:
    """The labelled per-image results a report is made of, and the charset of its confusion
    matrix: read from ``predictions``, or from ``checkpoint`` evaluated on ``part`` of its own
    split of ``data_dir``.

    Raises:
        ValueError, OSError: A model or predictions file that cannot be used, named.
    """
    if checkpoint is not None:
        results, spec = evaluate_checkpoint(checkpoint, data_dir, part, fold)
        charset = charset or spec.charset
    else:
        results = read_image_results(predictions)
        charset = charset or "".join(sorted({c for r in results for c in r.label}))
    if not any(r.label for r in results):
        raise ValueError(f"{predictions or checkpoint}: no labelled images to analyse")
    return results, charset
