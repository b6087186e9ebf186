"""Write an error-analysis report: CSV tables and PNG figures.

    captcha-ocr report --predictions results/crnn_oof.csv --data_dir ../shared/data/captcha_images_v2 \\
        --out reports/crnn
    captcha-ocr report --checkpoint best.ckpt --fold 0 --part test --data_dir ... --out reports/fold0
"""

import argparse
import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from captcha_ocr.analysis import (
    ImageResult,
    confusion_matrix,
    confusions,
    error_rate_by_character,
    error_rate_by_position,
    read_predictions,
    summary,
    worst,
)
from captcha_ocr.checkpoint import ModelSpec, load_model
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.decoding import greedy_decode, softmax
from captcha_ocr.figures import confusion_figure, error_rate_figure, worst_images_grid
from captcha_ocr.losses import sequence_loss
from captcha_ocr.model import CaptchaNet


def evaluate_model(model: CaptchaNet, spec: ModelSpec, data_dir: str | Path, fold: int, part: str) -> list[ImageResult]:
    """Per-image results of a network on one part ("train", "val", "test") of a fold, with the
    confidence of each predicted position."""
    data = CaptchaDataModule(
        str(data_dir),
        spec.charset,
        spec.min_length,
        spec.max_length,
        spec.height,
        spec.width,
        crop_to_text=spec.crop_to_text,
        fold=fold,
    )
    data.setup("test")
    tokenizer = spec.tokenizer()
    indices = getattr(data.split, part)
    images = data.dataset.images[indices].float() / 255  # (N, 1, H, W)
    targets = data.dataset.targets[indices]  # (N, L)
    with torch.inference_mode():
        logits = model(images)
    losses = sequence_loss(logits, targets, spec.head, tokenizer.pad_id, reduction="none")  # (N,)
    texts, confidences = greedy_decode(logits.numpy(), tokenizer, spec.head)
    position_confidences = softmax(logits.numpy()).max(-1)  # (N, L) or (N, T)
    return [
        ImageResult(
            file=data.dataset.files[i].name,
            label=data.dataset.labels[i],
            prediction=texts[n],
            loss=float(losses[n]),
            confidence=float(confidences[n]),
            position_confidences=[round(float(c), 4) for c in position_confidences[n]],
            fold=fold,
        )
        for n, i in enumerate(indices)
    ]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def per_image_rows(results: Sequence[ImageResult]) -> list[list]:
    return [
        [r.fold, r.file, r.label, r.prediction, round(r.loss, 6), round(r.cer, 4), round(r.confidence, 6),
         " ".join(map(str, r.position_confidences))]
        for r in results
    ]  # fmt: skip


def write_report(results: list[ImageResult], data_dir: Path, out: Path, charset: str, k: int = 16) -> dict:
    """Write tables and figures of ``results`` into ``out``; returns the summary numbers."""
    out.mkdir(parents=True, exist_ok=True)
    header = ["fold", "file", "label", "prediction", "loss", "cer", "confidence", "position_confidences"]
    write_csv(out / "per_image.csv", header, per_image_rows(results))
    for by in ("loss", "cer"):
        chosen = worst(results, k, by)
        write_csv(out / f"worst_by_{by}.csv", header, per_image_rows(chosen))
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="captcha-ocr report", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, help="out-of-fold predictions (results/<name>_oof.csv)")
    source.add_argument("--checkpoint", type=Path, help="a checkpoint to evaluate on --fold / --part")
    parser.add_argument("--data_dir", type=Path, required=True, help="folder of the images")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--part", choices=("train", "val", "test"), default="test")
    parser.add_argument("--charset", default=None, help="charset of the confusion matrix (default: the model's)")
    parser.add_argument("--k", type=int, default=16, help="how many worst images to show")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    args = parser.parse_args(argv)
    if args.checkpoint:
        model, spec = load_model(args.checkpoint)
        results = evaluate_model(model, spec, args.data_dir, args.fold, args.part)
        charset = args.charset or spec.charset
    else:
        results = read_predictions(args.predictions)
        charset = args.charset or "".join(sorted({c for r in results for c in r.label}))
    numbers = write_report(results, args.data_dir, args.out, charset, args.k)
    print(json.dumps(numbers))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
