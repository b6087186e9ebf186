"""How well a model reads captchas that are not pixel-identical to its training files.

    python benchmarks/robustness.py                                  # shipped crnn, fold-0 test part
    python benchmarks/robustness.py --model fast --model old.onnx --no-ddddocr
    python benchmarks/robustness.py --data_dir my_captchas --files my_list.txt

Every image of the set is changed by each perturbation of ``captcha_ocr.perturbations`` at each
strength (mild / moderate / strong), saved as a PNG file in memory (JPEG for the ``jpeg``
perturbation) and read back, as a user's file would be. Each model reads every version; so does
ddddocr, when it is installed, with its output restricted to the labels' alphabet. Writes

- ``<out>/robustness.csv``: model, perturbation, strength, value -> whole-captcha accuracy, CER,
  wrong readings and wrong readings with confidence above 0.9;
- ``<out>/robustness_coverage.csv``: the risk-coverage curve of each model over all versions;
- ``<plots>/robustness.png`` and ``<plots>/risk_coverage.png``;

and prints the accuracy table in Markdown. The default set is fold 0's 208 test images, which
the shipped models never saw.
"""

import argparse
import csv
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from captcha_ocr.perturbations import PERTURBATIONS, STRENGTHS, Perturbation

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "captcha_images_v2"
CONFIDENT = 0.9  # a wrong reading above this confidence is a confident mistake


@dataclass(frozen=True)
class Version:
    """One perturbation at one strength (``clean``: the files as they are)."""

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
    yield Version("clean", "-", "-"), [encoded(image) for image in originals]
    for index, perturbation in enumerate(PERTURBATIONS):
        for strength, value in zip(STRENGTHS, perturbation.values, strict=True):
            files = [
                encoded(_perturb(perturbation, image, strength, seed=(index, number)))
                for number, image in enumerate(originals)
            ]
            yield Version(perturbation.name, strength, f"{value} {perturbation.unit}"), files


def _perturb(perturbation: Perturbation, image: Image.Image, strength: str, seed: tuple[int, int]) -> Image.Image:
    return perturbation(image, strength, np.random.default_rng(seed))


class ModelReader:
    """A captcha_ocr model: texts and confidences of encoded image files."""

    def __init__(self, model: str, backend: str, threads: int) -> None:
        from captcha_ocr.reader import CaptchaReader

        self.name = Path(model).stem if Path(model).suffix else model
        self.reader = CaptchaReader(model, backend=backend, num_threads=threads)

    def __call__(self, files: list[bytes]) -> tuple[list[str], list[float]]:
        readings = self.reader.read([Image.open(io.BytesIO(f)) for f in files])
        return [r.text for r in readings], [r.confidence for r in readings]


class DdddocrReader:
    """ddddocr, which never saw this data, restricted to the alphabet of the labels."""

    def __init__(self, charset: str) -> None:
        import ddddocr

        self.name = f"ddddocr {ddddocr.__version__}" if hasattr(ddddocr, "__version__") else "ddddocr"
        self.ocr = ddddocr.DdddOcr(show_ad=False)
        self.ocr.set_ranges(charset)

    def __call__(self, files: list[bytes]) -> tuple[list[str], list[float]]:
        return [self.ocr.classification(f) for f in files], [float("nan")] * len(files)


def scores(texts: list[str], labels: list[str], confidences: list[float]) -> dict:
    from torchmetrics.functional.text import char_error_rate

    wrong = [t != g for t, g in zip(texts, labels, strict=True)]
    confident = [w and c > CONFIDENT for w, c in zip(wrong, confidences, strict=True)]
    return {
        "seq_acc": round(1 - sum(wrong) / len(labels), 5),
        "cer": round(float(char_error_rate(texts, labels)), 5),
        "wrong": sum(wrong),
        "wrong_confident": sum(confident),
    }


def risk_coverage(correct: np.ndarray, confidence: np.ndarray) -> list[dict]:
    """Accuracy of the readings kept when only those at or above a threshold are kept, for
    thresholds from 0 up: one row per share of readings kept."""
    order = np.argsort(-confidence, kind="stable")
    kept_correct = np.cumsum(correct[order])  # (N,) correct readings among the k most confident
    kept = np.arange(1, len(order) + 1)
    rows = []
    for coverage in np.linspace(0.05, 1.0, 20):
        k = max(1, round(coverage * len(order)))
        threshold = float(confidence[order][k - 1])
        rows.append(
            {
                "coverage": round(k / len(order), 4),
                "accuracy": round(float(kept_correct[k - 1] / kept[k - 1]), 5),
                "threshold": round(threshold, 6),
            }
        )
    return rows


def plot_accuracy(rows: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [p.name for p in PERTURBATIONS]
    models = list(dict.fromkeys(r["model"] for r in rows))
    columns = 5
    figure, axes = plt.subplots(-(-len(names) // columns), columns, figsize=(15, 11), sharey=True)
    for axis, name in zip(axes.flat, names, strict=False):
        for model in models:
            clean = next(r for r in rows if r["model"] == model and r["perturbation"] == "clean")
            points = [clean] + [r for r in rows if r["model"] == model and r["perturbation"] == name]
            axis.plot(range(len(points)), [100 * r["seq_acc"] for r in points], marker="o", label=model)
        axis.set_title(name, fontsize=10)
        axis.set_xticks(range(4), ["none", *STRENGTHS], fontsize=8)
        axis.set_ylim(0, 102)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(names) :]:
        axis.axis("off")
    axes.flat[0].set_ylabel("whole-captcha accuracy %")
    axes.flat[0].legend(fontsize=8, loc="lower left")
    figure.suptitle("Reading perturbed captchas (fold-0 test images)")
    figure.tight_layout()
    figure.savefig(target, dpi=80)
    plt.close(figure)


def plot_coverage(rows: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for (model, subset), points in _grouped(rows).items():
        axis.plot(
            [100 * p["coverage"] for p in points],
            [100 * p["accuracy"] for p in points],
            marker=".",
            label=f"{model}, {subset}",
        )
    axis.set_xlabel("readings kept (most confident first) %")
    axis.set_ylabel("accuracy of the kept readings %")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, dpi=90)
    plt.close(figure)


def _grouped(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["set"]), []).append(row)
    return groups


def write_csv(rows: list[dict], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as file:
        writer = csv.DictWriter(file, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown(rows: list[dict]) -> str:
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = [
        "| perturbation | strength | " + " | ".join(f"{m} acc. % (CER %)" for m in models) + " |",
        "|---|---|" + "---|" * len(models),
    ]
    keys = list(dict.fromkeys((r["perturbation"], r["strength"], r["value"]) for r in rows))
    for perturbation, strength, value in keys:
        cells = []
        for model in models:
            row = next(
                r
                for r in rows
                if r["model"] == model and (r["perturbation"], r["strength"]) == (perturbation, strength)
            )
            cells.append(f"{100 * row['seq_acc']:.1f} ({100 * row['cer']:.2f})")
        label = strength if value == "-" else f"{strength}: {value}"
        lines.append(f"| {perturbation} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Writes CSV files and plots; see the module docstring."
    )
    parser.add_argument(
        "--model",
        action="append",
        help="shipped name (crnn, fast), checkpoint, .pt or .onnx; repeat for several (default: crnn)",
    )
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="onnx",
        help="for shipped names; a file's suffix decides otherwise",
    )
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA, help="folder of labelled captchas")
    parser.add_argument(
        "--files", type=Path, help="text file of file names in data_dir, one per line (default: fold 0's test part)"
    )
    parser.add_argument("--no-ddddocr", action="store_true", help="do not run ddddocr even if it is installed")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder for the CSV files")
    parser.add_argument("--plots", type=Path, default=Path("docs"), help="folder for the plots")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.data_dir.is_dir():
        sys.exit(f"robustness: no data folder at {args.data_dir} (pass --data_dir)")
    if args.files:
        files = [args.data_dir / line.strip() for line in args.files.read_text().splitlines() if line.strip()]
    else:
        from captcha_ocr.data.dataset import image_files
        from captcha_ocr.data.split import fold_test_files

        files = fold_test_files(image_files(args.data_dir))
    labels = [f.stem.split("_")[0] for f in files]
    readers = []
    for model in args.model or ["crnn"]:
        backend = "onnx" if model.endswith(".onnx") else "torch" if Path(model).suffix else args.backend
        readers.append(ModelReader(model, backend, args.threads))
    if not args.no_ddddocr:
        try:
            readers.append(DdddocrReader("".join(sorted(set("".join(labels))))))
        except ImportError:
            print("robustness: ddddocr is not installed, left out", file=sys.stderr)
    originals = [Image.open(f).convert("RGB") for f in files]
    total = 1 + len(PERTURBATIONS) * len(STRENGTHS)
    rows, pooled = [], {r.name: {"clean": [], "perturbed": []} for r in readers}
    for number, (version, encoded_files) in enumerate(versions(originals), start=1):
        print(f"[{number}/{total}] {version.perturbation} {version.strength}", file=sys.stderr, flush=True)
        for reader in readers:
            texts, confidences = reader(encoded_files)
            rows.append(
                {"model": reader.name, **vars(version), "images": len(files), **scores(texts, labels, confidences)}
            )
            subset = "clean" if version.perturbation == "clean" else "perturbed"
            pooled[reader.name][subset] += [(t == g, c) for t, g, c in zip(texts, labels, confidences, strict=True)]
    coverage_rows = []
    for model, subsets in pooled.items():
        for subset, pairs in subsets.items():
            correct, confidence = (np.array(v, dtype=np.float64) for v in zip(*pairs, strict=True))
            if np.isnan(confidence).all():
                continue
            coverage_rows += [{"model": model, "set": subset, **row} for row in risk_coverage(correct, confidence)]
    args.plots.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "robustness.csv")
    write_csv(coverage_rows, args.out / "robustness_coverage.csv")
    plot_accuracy(rows, args.plots / "robustness.png")
    plot_coverage(coverage_rows, args.plots / "risk_coverage.png")
    print(markdown(rows))
    for reader in readers:
        own = [r for r in rows if r["model"] == reader.name]
        wrong = sum(r["wrong"] for r in own)
        confident = sum(r["wrong_confident"] for r in own)
        if reader.name.startswith("ddddocr"):
            continue
        print(
            f"{reader.name}: {wrong} wrong readings, {confident} of them ({100 * confident / max(wrong, 1):.1f} %) "
            f"with confidence > {CONFIDENT}"
        )


if __name__ == "__main__":
    main()
