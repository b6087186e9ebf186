"""How well models read captchas that are not pixel-identical to their training files.

    python benchmarks/robustness.py --fold 0 --model crnn              # a shipped model on fold 0's test images
    python benchmarks/robustness.py --fold 1 --cv crnn --cv joint --seeds 0 1   # cross-validation models of fold 1
    python benchmarks/robustness.py --fold 0 --model old.onnx --no-ddddocr
    python benchmarks/robustness.py --summary                          # mean ± std over the recorded runs, plots

Every test image of the fold is changed by each perturbation of ``captcha_ocr.analysis.perturbations`` at
each strength (mild / moderate / strong), saved as a PNG file in memory and read back, as a
user's file would be. Each model reads every version; so does ddddocr, when it is installed, with
its output restricted to the labels' alphabet. A model is scored on the test part of the fold it
was trained for (``--fold``), which it never saw; ``--part val`` scores it on that fold's
validation part instead, so that a choice between variants leaves the test parts alone. The
perturbations come in two groups (``perturbations.DESIGN`` and ``perturbations.HELD_OUT``),
reported apart.

Each run (model, fold, seed) appends, and is skipped when already recorded:

- ``<out>/robustness_runs.csv``: group, perturbation, strength -> whole-captcha accuracy, CER,
  wrong readings, and wrong readings with confidence above 0.9;
- ``<out>/robustness_confidence.csv``: over all versions, the accuracy of the readings kept at
  each coverage (most confident first) and at each ``--min-confidence`` threshold.

``--summary`` reads both and writes ``<out>/robustness_summary.csv`` (mean ± std over runs per
model, family and strength), ``<plots>/robustness.png``, ``<plots>/risk_coverage.png``, and prints
the Markdown tables of the README.
"""

import argparse
import io
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from captcha_ocr.analysis.confidence import confidence_rows
from captcha_ocr.analysis.errors import text_summary
from captcha_ocr.analysis.perturbations import DESIGN, HELD_OUT, PERTURBATIONS, STRENGTHS, Perturbation
from captcha_ocr.analysis.results import append_rows, read_rows, write_rows
from captcha_ocr.data.sources import find_data_dir

DEFAULT_DATA = find_data_dir(Path(__file__).resolve().parents[1])
CONFIDENT = 0.9  # a wrong reading above this confidence is a confident mistake
RUN_KEY = ("model", "fold", "seed")
GROUPS = {p.name: group for group, members in (("design", DESIGN), ("held-out", HELD_OUT)) for p in members}


@dataclass(frozen=True)
class Version:
    """One perturbation at one strength (``clean``: the files as they are)."""

    group: str
    perturbation: str
    strength: str
    value: str


def encoded(image: Image.Image) -> bytes:
    """The image as a PNG file (after the ``jpeg`` perturbation, its pixels carry the JPEG
    artefacts), as a user would hand it over."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def versions(originals: list[Image.Image]) -> Iterator[tuple[Version, list[bytes]]]:
    """Every version of the image set as encoded files, the clean one first."""
    yield Version("clean", "clean", "-", "-"), [encoded(image) for image in originals]
    for index, perturbation in enumerate(PERTURBATIONS):
        for strength, value in zip(STRENGTHS, perturbation.values, strict=True):
            files = [
                encoded(_perturb(perturbation, image, strength, seed=(index, number)))
                for number, image in enumerate(originals)
            ]
            version = Version(GROUPS[perturbation.name], perturbation.name, strength, f"{value} {perturbation.unit}")
            yield version, files


def _perturb(perturbation: Perturbation, image: Image.Image, strength: str, seed: tuple[int, int]) -> Image.Image:
    return perturbation(image, strength, np.random.default_rng(seed))


class ModelReader:
    """A captcha_ocr model: texts and confidences of encoded image files."""

    def __init__(self, model: str, name: str, seed: str, backend: str, threads: int) -> None:
        from captcha_ocr.reading.reader import CaptchaReader

        self.name, self.seed = name, seed
        self.reader = CaptchaReader(model, backend=backend, num_threads=threads)

    def __call__(self, files: list[bytes]) -> tuple[list[str], list[float]]:
        readings = self.reader.read([Image.open(io.BytesIO(f)) for f in files])
        return [r.text for r in readings], [r.confidence for r in readings]


class DdddocrReader:
    """ddddocr, which never saw this data, restricted to the alphabet of the labels."""

    seed = "-"

    def __init__(self, charset: str) -> None:
        import importlib.metadata

        import ddddocr

        self.name = f"ddddocr {importlib.metadata.version('ddddocr')}"
        self.ocr = ddddocr.DdddOcr(show_ad=False)
        self.ocr.set_ranges(charset)

    def __call__(self, files: list[bytes]) -> tuple[list[str], list[float]]:
        return [self.ocr.classification(f) for f in files], [float("nan")] * len(files)


def scores(texts: list[str], labels: list[str], confidences: list[float]) -> dict:
    headline = text_summary(texts, labels)
    wrong = [t != g for t, g in zip(texts, labels, strict=True)]
    return {
        "whole_acc": round(headline["whole_acc"], 5),
        "cer": round(headline["cer"], 5),
        "wrong": headline["wrong_images"],
        "wrong_confident": sum(w and c > CONFIDENT for w, c in zip(wrong, confidences, strict=True)),
    }


def append_csv(path: Path, rows: list[dict]) -> None:
    """Append rows (their keys, in order of appearance, are the columns of a new file)."""
    append_rows(path, list(dict.fromkeys(k for row in rows for k in row)), rows)


def measure(args: argparse.Namespace) -> None:
    """Score the models of ``--fold`` on its test images and append their rows."""
    from captcha_ocr.data.dataset import label_from_name
    from captcha_ocr.data.split import fold_test_files
    from captcha_ocr.reading.listing import image_files

    files = fold_test_files(image_files(args.data_dir), fold=args.fold, part=args.part)
    labels = [label_from_name(f) for f in files]
    recorded = {tuple(r[k] for k in RUN_KEY) for r in read_rows(args.out / "robustness_runs.csv")}
    readers = []
    for model, name, seed in model_files(args):
        if (name, str(args.fold), seed) in recorded:
            print(f"robustness: {name} fold {args.fold} seed {seed} already recorded, skipped", file=sys.stderr)
            continue
        backend = "onnx" if model.endswith(".onnx") else "torch" if Path(model).suffix else args.backend
        readers.append(ModelReader(model, name, seed, backend, args.threads))
    if not args.no_ddddocr:
        try:
            ddddocr = DdddocrReader("".join(sorted(set("".join(labels)))))
            if (ddddocr.name, str(args.fold), "-") not in recorded:
                readers.append(ddddocr)
        except ImportError:
            print("robustness: ddddocr is not installed, left out", file=sys.stderr)
    if not readers:
        return
    originals = [Image.open(f).convert("RGB") for f in files]
    total = 1 + len(PERTURBATIONS) * len(STRENGTHS)
    rows = []
    pooled: dict[str, list[tuple[bool, float]]] = {r.name: [] for r in readers}
    for number, (version, encoded_files) in enumerate(versions(originals), start=1):
        print(f"[{number}/{total}] {version.perturbation} {version.strength}", file=sys.stderr, flush=True)
        for reader in readers:
            texts, confidences = reader(encoded_files)
            rows.append({"model": reader.name, "fold": args.fold, "seed": reader.seed, **vars(version),
                         "images": len(files), **scores(texts, labels, confidences)})  # fmt: skip
            pooled[reader.name] += [(t == g, c) for t, g, c in zip(texts, labels, confidences, strict=True)]
    confidence = []
    for reader in readers:
        correct, values = (np.array(v, dtype=np.float64) for v in zip(*pooled[reader.name], strict=True))
        if not np.isnan(values).all():
            run = {"model": reader.name, "fold": args.fold, "seed": reader.seed}
            confidence += [{**run, **row} for row in confidence_rows(correct, values)]
    append_csv(args.out / "robustness_runs.csv", rows)
    append_csv(args.out / "robustness_confidence.csv", confidence)


def model_files(args: argparse.Namespace) -> Iterator[tuple[str, str, str]]:
    """(file or shipped name, model name, seed) of each model asked for."""
    for model in args.model or []:
        yield model, Path(model).stem if Path(model).suffix else model, "-"
    from captcha_ocr.training.lightning_cli import latest_best_checkpoint

    for name in args.cv or []:
        for seed in args.seeds:
            run = f"fold{args.fold}_seed{seed}"
            found = latest_best_checkpoint(args.logs / "cv" / name, run)  # a re-run's last
            if found is None:
                sys.exit(f"robustness: no best-*.ckpt in {args.logs / 'cv' / name / run}: cross-validate {name} on "
                         f"fold {args.fold} first")  # fmt: skip
            yield str(found), name, str(seed)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows: list[dict]) -> list[dict]:
    """Mean ± std over runs of each model's whole-captcha accuracy per family and strength."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        key = (row["model"], row["group"], row["perturbation"], row["strength"])
        groups.setdefault(key, []).append(float(row["whole_acc"]))
    return [{"model": m, "group": g, "perturbation": p, "strength": s, "runs": len(v),
             "whole_acc_mean": round(mean_std(v)[0], 5), "whole_acc_std": round(mean_std(v)[1], 5)}
            for (m, g, p, s), v in groups.items()]  # fmt: skip


def markdown(summary: list[dict], strength: str, group: str) -> str:
    models = list(dict.fromkeys(r["model"] for r in summary))
    cell = {(r["model"], r["perturbation"]): r for r in summary if r["strength"] in (strength, "-")}
    families = ["clean"] + [p.name for p in PERTURBATIONS if GROUPS[p.name] == group]
    lines = [f"| {group} family, {strength} | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for family in families:
        values = []
        for model in models:
            row = cell.get((model, family))
            if row is None:
                values.append("")
                continue
            spread = f" ± {100 * row['whole_acc_std']:.1f}" if row["runs"] > 1 else ""
            values.append(f"{100 * row['whole_acc_mean']:.1f}{spread}")
        lines.append(f"| {family} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def confidence_markdown(rows: list[dict], runs: list[dict]) -> str:
    """Per model, over runs: wrong readings above 0.9, accuracy at 95 % coverage and its threshold."""
    lines = ["| model | runs | wrong readings with confidence > 0.9 | accuracy at 95 % coverage | threshold there |",
             "|---|---|---|---|---|"]  # fmt: skip
    for model in dict.fromkeys(r["model"] for r in rows):
        keys = sorted({(r["fold"], r["seed"]) for r in rows if r["model"] == model})
        shares, accuracies, thresholds = [], [], []
        for fold, seed in keys:
            own = [r for r in runs if (r["model"], r["fold"], r["seed"]) == (model, fold, seed)]
            wrong = sum(int(r["wrong"]) for r in own)
            shares.append(sum(int(r["wrong_confident"]) for r in own) / max(wrong, 1))
            point = next(r for r in rows if (r["model"], r["fold"], r["seed"]) == (model, fold, seed)
                         and r["kind"] == "coverage" and abs(float(r["coverage"]) - 0.95) < 0.005)  # fmt: skip
            accuracies.append(float(point["accuracy"]))
            thresholds.append(float(point["threshold"]))
        lines.append(f"| {model} | {len(keys)} | {_pct(shares)} | {_pct(accuracies, 2)} | "
                     f"{statistics.mean(thresholds):.3f} |")  # fmt: skip
    return "\n".join(lines)


def _pct(values: list[float], digits: int = 1) -> str:
    mean, std = mean_std(values)
    return f"{100 * mean:.{digits}f} %" + (f" ± {100 * std:.{digits}f}" if len(values) > 1 else "")


def plot_accuracy(summary: list[dict], target: Path) -> None:
    """Whole-captcha accuracy at moderate and strong strength per family, both groups, mean ± std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in summary))
    figure, axes = plt.subplots(4, 1, figsize=(15, 15), height_ratios=[len(DESIGN), len(DESIGN), 12, 12])
    panels = [("design", "moderate"), ("design", "strong"), ("held-out", "moderate"), ("held-out", "strong")]
    width = 0.8 / len(models)
    for axis, (group, strength) in zip(axes, panels, strict=True):
        families = [p.name for p in PERTURBATIONS if GROUPS[p.name] == group]
        for m, model in enumerate(models):
            cell = {r["perturbation"]: r for r in summary if r["model"] == model and r["strength"] == strength}
            x = [i + m * width for i, f in enumerate(families) if f in cell]
            means = [100 * cell[f]["whole_acc_mean"] for f in families if f in cell]
            stds = [100 * cell[f]["whole_acc_std"] for f in families if f in cell]
            axis.bar(x, means, width, yerr=stds, label=model, capsize=2)
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(families))], families, rotation=30, fontsize=8)
        axis.set_ylim(0, 102)
        axis.set_ylabel("whole-captcha %")
        axis.set_title(f"{group} families, {strength} strength (mean ± std over runs)", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="upper center", ncol=len(models), fontsize=9)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(target, dpi=70)
    plt.close(figure)


def plot_coverage(rows: list[dict], target: Path) -> None:
    """Risk-coverage curve of each model, the mean over its runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for model in dict.fromkeys(r["model"] for r in rows):
        points: dict[float, list[float]] = {}
        for r in rows:
            if r["model"] == model and r["kind"] == "coverage":
                points.setdefault(round(float(r["coverage"]), 2), []).append(float(r["accuracy"]))
        coverage = sorted(points)
        axis.plot([100 * c for c in coverage], [100 * statistics.mean(points[c]) for c in coverage], marker=".",
                  label=model)  # fmt: skip
    axis.set_xlabel("readings kept (most confident first) %")
    axis.set_ylabel("accuracy of the kept readings %")
    axis.set_title("clean and perturbed readings pooled", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, dpi=90)
    plt.close(figure)


def write_summary(args: argparse.Namespace) -> None:
    runs = read_rows(args.out / "robustness_runs.csv")
    if not runs:
        sys.exit(f"robustness: no runs recorded in {args.out / 'robustness_runs.csv'}")
    summary = summarise(runs)
    write_rows(args.out / "robustness_summary.csv", list(summary[0]), summary)
    confidence = read_rows(args.out / "robustness_confidence.csv")
    args.plots.mkdir(parents=True, exist_ok=True)
    plot_accuracy(summary, args.plots / "robustness.png")
    if confidence:
        plot_coverage(confidence, args.plots / "risk_coverage.png")
    for group in ("design", "held-out"):
        for strength in ("moderate", "strong"):
            print(markdown(summary, strength, group), end="\n\n")
    if confidence:
        print(confidence_markdown(confidence, runs))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Writes CSV files and plots; see the module docstring."
    )
    parser.add_argument("--model", action="append", help="shipped name (crnn, fast, ctc), checkpoint, .pt or .onnx")
    parser.add_argument("--cv", action="append", help="a cross-validated config: its fold-K models of --seeds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the --cv models (default: 0)")
    parser.add_argument("--fold", type=int, default=0, help="score on this fold's test images (default: 0)")
    parser.add_argument("--part", choices=("test", "val"), default="test",
                        help="the fold's test part (default), or its validation part to choose on")  # fmt: skip
    parser.add_argument("--logs", type=Path, default=Path("lightning_logs"), help="where cross-validation logged")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="onnx",
                        help="for shipped names; a file's suffix decides otherwise")  # fmt: skip
    parser.add_argument("--data-dir", "--data_dir", type=Path, default=DEFAULT_DATA, help="folder of labelled captchas")
    parser.add_argument("--no-ddddocr", action="store_true", help="do not run ddddocr even if it is installed")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder for the CSV files")
    parser.add_argument("--plots", type=Path, default=Path("docs"), help="folder for the plots")
    parser.add_argument("--summary", action="store_true", help="summarise the recorded runs instead of measuring")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.summary:
        write_summary(args)
        return
    if not args.data_dir.is_dir():
        sys.exit(f"robustness: no data folder at {args.data_dir} (pass --data-dir)")
    if not (args.model or args.cv):
        sys.exit("robustness: name a model (--model crnn) or cross-validated runs (--cv crnn)")
    measure(args)


if __name__ == "__main__":
    main()
