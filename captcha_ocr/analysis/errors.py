"""Error analysis of per-image predictions: worst images, confusions, error by position and
character, over ``ImageResult`` records (``captcha_ocr.analysis.results``). Label and reading are aligned
by their fewest character edits (``ImageResult.edits``), as CER counts them, so a dropped
character is one deletion, not a shift of every character after it. No torch needed."""

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from captcha_ocr.analysis.results import ImageResult

MISSING = "∅"  # the other side of an insertion or a deletion


def worst(results: list[ImageResult], k: int = 16, by: str = "loss") -> list[ImageResult]:
    """The ``k`` images with the highest ``by`` ("loss" or "cer"; ties broken by loss)."""
    if by == "cer":
        return sorted(results, key=lambda r: (r.cer, r.loss), reverse=True)[:k]
    return sorted(results, key=lambda r: r.loss, reverse=True)[:k]


def confusions(results: list[ImageResult]) -> Counter:
    """Counts of (true, read) pairs over all edits; "∅" on the side of an insertion or deletion."""
    return Counter((t, p) for r in results for _, t, p in r.edits())


def confusion_matrix(results: list[ImageResult], charset: str) -> np.ndarray:
    """Rows: true character, columns: read, over the aligned characters of every image (the
    right ones on the diagonal); the last row / column is "∅" (an inserted / a lost character)."""
    symbols = [*charset, MISSING]
    index = {s: i for i, s in enumerate(symbols)}
    matrix = np.zeros((len(symbols), len(symbols)), dtype=np.int64)
    for r in results:
        edited = {at for at, t, _ in r.edits() if t != MISSING}  # label positions replaced or lost
        for at, c in enumerate(r.label):
            if at not in edited:
                matrix[index[c], index[c]] += 1
        for _, t, p in r.edits():
            matrix[index[t], index[p]] += 1
    return matrix


def error_rate_by_position(results: list[ImageResult]) -> dict[int, float]:
    """Share of images whose character at each label position is read wrong or lost."""
    errors: Counter[int] = Counter()
    totals: Counter[int] = Counter()
    for r in results:
        wrong = {at for at, t, _ in r.edits() if t != MISSING}
        for at in range(len(r.label)):
            totals[at] += 1
            errors[at] += at in wrong
    return {at: errors[at] / totals[at] for at in sorted(totals)}


def error_rate_by_character(results: list[ImageResult]) -> dict[str, float]:
    """Share of occurrences of each true character that are read wrong or lost."""
    errors: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for r in results:
        wrong = {at for at, t, _ in r.edits() if t != MISSING}
        for at, c in enumerate(r.label):
            totals[c] += 1
            errors[c] += at in wrong
    return {c: errors[c] / totals[c] for c in sorted(totals)}


def summary(results: list[ImageResult]) -> dict[str, float]:
    """Headline numbers: CER over all characters, whole-captcha accuracy, and the wrong
    characters (edits), which are the CER's numerator."""
    edits = sum(Levenshtein.distance(r.label, r.text) for r in results)
    return {
        "images": len(results),
        "cer": edits / max(sum(len(r.label) for r in results), 1),
        "whole_acc": sum(r.correct for r in results) / len(results),
        "wrong_images": sum(not r.correct for r in results),
        "wrong_characters": edits,
    }


def text_summary(texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """``summary`` of readings against their labels, for readers that give texts alone."""
    results = [ImageResult("", label, text, math.nan, math.nan) for text, label in zip(texts, labels, strict=True)]
    return summary(results)
