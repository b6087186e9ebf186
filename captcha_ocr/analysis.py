"""Error analysis of per-image predictions: worst images, confusions, error by position and
character, over ``ImageResult`` records (``captcha_ocr.results``)."""

from collections import Counter

import numpy as np
from torchmetrics.functional.text import char_error_rate

from captcha_ocr.results import ImageResult


def worst(results: list[ImageResult], k: int = 16, by: str = "loss") -> list[ImageResult]:
    """The ``k`` images with the highest ``by`` ("loss" or "cer"; ties broken by loss)."""
    if by == "cer":
        return sorted(results, key=lambda r: (r.cer, r.loss), reverse=True)[:k]
    return sorted(results, key=lambda r: r.loss, reverse=True)[:k]


def confusions(results: list[ImageResult]) -> Counter:
    """Counts of (true, predicted) character pairs over all wrong positions."""
    return Counter((t, p) for r in results for _, t, p in r.substitutions())


def confusion_matrix(results: list[ImageResult], charset: str) -> np.ndarray:
    """Rows: true character, columns: predicted, over every position of every image; the last
    row / column is "∅" (missing character)."""
    symbols = [*charset, "∅"]
    index = {s: i for i, s in enumerate(symbols)}
    matrix = np.zeros((len(symbols), len(symbols)), dtype=np.int64)
    for r in results:
        length = max(len(r.label), len(r.prediction))
        for t, p in zip(r.label.ljust(length, "∅"), r.prediction.ljust(length, "∅"), strict=True):
            matrix[index[t], index[p]] += 1
    return matrix


def error_rate_by_position(results: list[ImageResult]) -> dict[int, float]:
    """Share of images whose character at each label position is wrong."""
    errors, totals = Counter(), Counter()
    for r in results:
        wrong = {i for i, _, _ in r.substitutions()}
        for i in range(len(r.label)):
            totals[i] += 1
            errors[i] += i in wrong
    return {i: errors[i] / totals[i] for i in sorted(totals)}


def error_rate_by_character(results: list[ImageResult]) -> dict[str, float]:
    """Share of occurrences of each true character that are read wrong (at their position)."""
    errors, totals = Counter(), Counter()
    for r in results:
        wrong = {i for i, _, _ in r.substitutions()}
        for i, c in enumerate(r.label):
            totals[c] += 1
            errors[c] += i in wrong
    return {c: errors[c] / totals[c] for c in sorted(totals)}


def summary(results: list[ImageResult]) -> dict[str, float]:
    """Headline numbers: CER over all characters, whole-captcha accuracy, error count."""
    return {
        "images": len(results),
        "cer": float(char_error_rate([r.prediction for r in results], [r.label for r in results])),
        "seq_acc": sum(r.correct for r in results) / len(results),
        "wrong_images": sum(not r.correct for r in results),
        "wrong_characters": sum(len(r.substitutions()) for r in results),
    }
