"""Write an error-analysis report of per-image results: CSV tables and PNG figures (the results
come from a predictions file or from ``training.evaluation.report_results``).

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
from captcha_ocr.analysis.results import ImageResult, write_image_results


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
