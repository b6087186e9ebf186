"""Result records and their files: one row per training run (``results/<name>_cv.csv``) and one
per image (``results/<name>_oof.csv``, ``report``'s ``per_image.csv``, ``predict``'s CSV), how
they are read and appended, and their mean ± std summaries."""

import csv
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz.distance import Levenshtein

RUN_COLUMNS = ["config", "fold", "seed", "epochs", "train_seconds", "seconds_per_epoch", "params", "val_cer",
               "val_loss", "test_cer", "test_whole_acc", "test_char_acc", "test_loss"]  # fmt: skip
IMAGE_COLUMNS = ["config", "fold", "seed", "file", "label", "text", "confidence", "loss", "characters"]
SUMMARY_METRICS = ["test_cer", "test_whole_acc", "test_char_acc", "val_cer", "train_seconds", "seconds_per_epoch"]
# Columns of files written before 0.4, read under today's names.
RENAMED_COLUMNS = {"prediction": "text", "whole": "whole_acc", "estimate_whole": "estimate_whole_acc"} | {
    f"{prefix}seq_acc{suffix}": f"{prefix}whole_acc{suffix}"
    for prefix in ("", "test_", "val_")
    for suffix in ("", "_mean", "_std")
}


@dataclass
class ImageResult:
    """One image's reading and how wrong it is. ``label`` and ``loss`` are empty for images
    without a label; ``characters`` holds the confidence of each read character."""

    file: str
    label: str
    text: str
    loss: float
    confidence: float
    characters: list[float] = field(default_factory=list)
    fold: int | None = None
    seed: int | None = None
    config: str = ""

    @property
    def cer(self) -> float:
        """Character edits from the label to the reading, per label character (the CER)."""
        return Levenshtein.distance(self.label, self.text) / max(len(self.label), 1)

    @property
    def correct(self) -> bool:
        return self.text == self.label

    def edits(self) -> list[tuple[int, str, str]]:
        """The fewest character edits that turn the label into the reading, aligned as CER
        aligns them: (label position, true, read) with "∅" for a character read but not there
        (an insertion, at the label position it comes before) or there but not read (a
        deletion). ``nnn2b`` read ``nn2b`` is one deletion, ``(2, "n", "∅")``."""
        found = []
        for operation in Levenshtein.editops(self.label, self.text):
            tag, at, to = operation.tag, operation.src_pos, operation.dest_pos
            true = "∅" if tag == "insert" else self.label[at]
            found.append((at, true, "∅" if tag == "delete" else self.text[to]))
        return found

    def row(self) -> dict:
        return {
            "config": self.config,
            "fold": "" if self.fold is None else self.fold,
            "seed": "" if self.seed is None else self.seed,
            "file": self.file,
            "label": self.label,
            "text": self.text,
            "confidence": round(self.confidence, 6),
            "loss": "" if self.loss != self.loss else round(self.loss, 6),  # NaN: no label
            "characters": " ".join(f"{c:.4f}" for c in self.characters),
        }

    @classmethod
    def from_row(cls, row: dict) -> "ImageResult":
        def optional_int(text: str | None) -> int | None:
            return int(text) if text else None

        return cls(
            file=row["file"],
            label=row["label"],
            text=row["text"],
            loss=float(row["loss"] or "nan"),
            confidence=float(row["confidence"]),
            characters=[float(c) for c in (row.get("characters") or "").split()],
            fold=optional_int(row.get("fold")),
            seed=optional_int(row.get("seed")),
            config=row.get("config") or "",
        )


def append_rows(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """Append rows to a CSV file, writing the header first if the file is new. A file written
    with fewer columns keeps its own (the new columns are left out of its rows); one written
    under old column names is rewritten under today's first."""
    new = not path.exists()
    if not new:
        with path.open(newline="") as file:
            header = next(csv.reader(file), list(columns))
        columns = [RENAMED_COLUMNS.get(c, c) for c in header]
        if columns != header:
            write_rows(path, columns, read_rows(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerows(rows)


def write_rows(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """Write a CSV file anew."""
    path.unlink(missing_ok=True)
    append_rows(path, columns, rows)


def read_rows(path: Path) -> list[dict]:
    """The rows of a CSV file as dicts, old column names read as today's; none if the file
    does not exist."""
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return [{RENAMED_COLUMNS.get(k, k): v for k, v in row.items()} for row in csv.DictReader(file)]


def write_image_results(path: Path, results: Iterable[ImageResult]) -> None:
    write_rows(path, IMAGE_COLUMNS, (r.row() for r in results))


def read_image_results(path: str | Path) -> list[ImageResult]:
    """Per-image results written by cross-validation, ``report`` or ``predict``.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is not such a CSV (naming the columns it lacks or the bad value).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no per-image results file at {str(path)!r}")
    rows = read_rows(path)
    missing = [c for c in ("file", "label", "text", "confidence") if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path} is not a per-image results CSV: no column {', '.join(missing)}")
    try:
        return [ImageResult.from_row(row) for row in rows]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: a row cannot be read ({error})") from error


def mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 4) -> str:
    """``mean ± std`` of ``values`` times ``scale``; one value alone is printed as it is."""
    scaled = [scale * v for v in values]
    if len(scaled) == 1:
        return f"{scaled[0]:.{digits}f}"
    return f"{statistics.mean(scaled):.{digits}f} ± {statistics.stdev(scaled):.{digits}f}"


def run_summary(rows: list[dict]) -> str:
    """Mean ± std over runs of each metric, and the worst run by test CER."""
    lines = [
        f"{len(rows)} run(s): folds {sorted({int(r['fold']) for r in rows})}, "
        f"seeds {sorted({int(r['seed']) for r in rows})}"
    ]
    lines += [f"  {metric:<18} {mean_std([float(r[metric]) for r in rows])}" for metric in SUMMARY_METRICS]
    worst = max(rows, key=lambda r: float(r["test_cer"]))
    lines.append(
        f"  worst run: fold {worst['fold']} seed {worst['seed']}: test_cer {float(worst['test_cer']):.4f}, "
        f"test_whole_acc {float(worst['test_whole_acc']):.4f}"
    )
    return "\n".join(lines)


def markdown_table(paths: Sequence[Path]) -> str:
    """One Markdown row per runs file: mean ± std over its runs, the worst run, time."""
    lines = [
        "| config | runs | test CER % | whole-captcha acc. % | char. acc. % | worst test CER % | val CER % "
        "| params | epochs | s / fold | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        rows = read_rows(path)
        if not rows:
            continue

        def cell(column: str, scale: float = 100.0, digits: int = 3, runs: list[dict] = rows) -> str:
            return mean_std([float(r[column]) for r in runs], scale, digits)

        worst = max(100 * float(r["test_cer"]) for r in rows)
        lines.append(
            f"| {rows[0]['config']} | {len(rows)} | {cell('test_cer')} | {cell('test_whole_acc', digits=2)} "
            f"| {cell('test_char_acc', digits=2)} | {worst:.3f} | {cell('val_cer')} "
            f"| {int(rows[0]['params']) / 1e6:.2f} M | {rows[0]['epochs']} "
            f"| {cell('train_seconds', 1, 0)} | {cell('seconds_per_epoch', 1, 1)} |"
        )
    return "\n".join(lines)
