"""How useful a reader's confidence is over a pool of its readings: risk against coverage (the
accuracy of the most confident share kept) and the trade of each rejection threshold."""

import numpy as np

COVERAGES = tuple(round(float(c), 2) for c in np.linspace(0.05, 1.0, 20))
THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99)


def confidence_rows(
    correct: np.ndarray,
    confidence: np.ndarray,
    coverages: tuple[float, ...] = COVERAGES,
    thresholds: tuple[float, ...] = THRESHOLDS,
) -> list[dict]:
    """How useful the confidence is over a pool of readings: the accuracy of the readings kept
    at each coverage (the most confident first), and at each threshold the share kept, their
    accuracy, the share of right readings rejected and of wrong readings let through."""
    order = np.argsort(-confidence, kind="stable")
    kept_correct = np.cumsum(correct[order])  # (N,) right readings among the k most confident
    rows = []
    for coverage in coverages:
        k = max(1, round(coverage * len(order)))
        rows.append({"kind": "coverage", "coverage": round(k / len(order), 4),
                     "accuracy": round(float(kept_correct[k - 1] / k), 5),
                     "threshold": round(float(confidence[order][k - 1]), 6)})  # fmt: skip
    right, wrong = correct.astype(bool), ~correct.astype(bool)
    for threshold in thresholds:
        kept = confidence >= threshold
        rows.append({"kind": "threshold", "coverage": round(float(kept.mean()), 4),
                     "accuracy": round(float(right[kept].mean()) if kept.any() else 1.0, 5), "threshold": threshold,
                     "right_rejected": round(float((right & ~kept).sum() / max(right.sum(), 1)), 5),
                     "wrong_kept": round(float((wrong & kept).sum() / max(wrong.sum(), 1)), 5)})  # fmt: skip
    return rows
