"""Report figures with matplotlib: worst images, confusion matrix, error rates."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files and TensorBoard only, never a window

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from captcha_ocr.analysis.results import ImageResult


def worst_images_grid(
    results: Sequence[ImageResult], images: Sequence[np.ndarray | Path], columns: int = 4, title: str = ""
) -> Figure:
    """A grid of images, each titled "label → reading" with its loss; wrong ones in red."""
    rows = max(1, -(-len(results) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 1.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, result, image in zip(axes.flat, results, images, strict=False):
        pixels = np.asarray(Image.open(image).convert("L")) if isinstance(image, (str, Path)) else image
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255 if pixels.max() > 1 else 1)
        ax.set_title(
            f"{result.label} → {result.text}  (loss {result.loss:.2f})",
            fontsize=9,
            color="black" if result.correct else "crimson",
            family="monospace",
        )
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def confusion_figure(matrix: np.ndarray, charset: str, title: str = "Confusions (off-diagonal only)") -> Figure:
    """Heat map of true (rows) vs predicted (columns) characters, the diagonal blanked so that
    the rare errors are visible; each non-zero cell carries its count."""
    symbols = [*charset, "∅"]
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)
    figure, ax = plt.subplots(figsize=(0.38 * len(symbols) + 1.5, 0.38 * len(symbols) + 1.2))
    ax.imshow(errors, cmap="Reds", vmin=0, vmax=max(1, errors.max()))
    ax.set_xticks(range(len(symbols)), symbols)
    ax.set_yticks(range(len(symbols)), symbols)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, column), count in np.ndenumerate(errors):
        if count:
            ax.text(column, row, str(count), ha="center", va="center", fontsize=8)
    ax.set_title(title)
    figure.tight_layout()
    return figure


def error_rate_figure(by_position: dict[int, float], by_character: dict[str, float]) -> Figure:
    """Bar charts of the error rate by position in the string and by true character."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 3]})
    left.bar([str(i + 1) for i in by_position], [100 * v for v in by_position.values()], color="steelblue")
    left.set_xlabel("position in the captcha")
    left.set_ylabel("characters read wrong (%)")
    right.bar(list(by_character), [100 * v for v in by_character.values()], color="indianred")
    right.set_xlabel("true character")
    figure.tight_layout()
    return figure
