"""Cross-validate a config over the k folds (and seeds) and record every run.

    python -m captcha_ocr.crossval --config configs/crnn.yaml --data_dir ../shared/data/captcha_images_v2
    python -m captcha_ocr.crossval --config configs/crnn.yaml --config configs/ablations/ctc.yaml \\
        --data_dir ../shared/data/captcha_images_v2 --folds 0 1 --seeds 0 1

For each fold and seed, one `fit` picks its checkpoint on the validation part of the train
folds; only then is the test fold read, once. Appends one row per run to
``results/<name>_cv.csv`` and the test fold's per-image predictions to
``results/<name>_oof.csv`` as each run ends, skips runs already recorded (so an interrupted
cross-validation resumes), and prints the mean ± std over the recorded runs.
"""

import argparse
import csv
import math
import statistics
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from captcha_ocr.callbacks import PredictionWriter
from captcha_ocr.lightning_cli import CaptchaCLI

RUN_COLUMNS = [
    "config",
    "fold",
    "seed",
    "epochs",
    "train_seconds",
    "seconds_per_epoch",
    "params",
    "val_cer",
    "val_loss",
    "test_cer",
    "test_seq_acc",
    "test_char_acc",
    "test_loss",
]
PREDICTION_COLUMNS = ["config", "fold", "seed", "file", "label", "prediction", "confidence", "loss"]
SUMMARY_METRICS = ["test_cer", "test_seq_acc", "test_char_acc", "val_cer", "train_seconds", "seconds_per_epoch"]


def run_fold(
    configs: Sequence[str], data_dir: str, fold: int, seed: int, name: str, overrides: Sequence[str] = ()
) -> tuple[dict, list[dict]]:
    """Train and evaluate one fold; returns the run's row and its per-image test predictions."""
    args = [arg for config in configs for arg in ("--config", config)]
    args += [
        f"--data.data_dir={data_dir}",
        f"--data.fold={fold}",
        f"--seed_everything={seed}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.name=cv/{name}",
        f"--trainer.logger.init_args.version=fold{fold}_seed{seed}",
        *overrides,
    ]
    with warnings.catch_warnings():  # args come from this command's own argv, on purpose
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = CaptchaCLI(args=args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    train_seconds = time.perf_counter() - start
    epochs = trainer.current_epoch
    (val,) = trainer.validate(model, datamodule=data, ckpt_path="best", verbose=False)
    (test,) = trainer.test(model, datamodule=data, ckpt_path="best", verbose=False)
    # The per-image predictions go to the results file, not through the CLI's CSV writer.
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, PredictionWriter)]
    batches = trainer.predict(model, datamodule=data, ckpt_path="best")
    row = {
        "config": name,
        "fold": fold,
        "seed": seed,
        "epochs": epochs,
        "train_seconds": round(train_seconds, 1),
        "seconds_per_epoch": round(train_seconds / max(epochs, 1), 2),
        "params": sum(p.numel() for p in model.parameters()),
        "val_cer": val["val/cer"],
        "val_loss": val["val/loss"],
        "test_cer": test["test/cer"],
        "test_seq_acc": test["test/seq_acc"],
        "test_char_acc": test["test/char_acc"],
        "test_loss": test["test/loss"],
    }
    texts = [t for b in batches for t in b["texts"]]
    labels = [t for b in batches for t in b["labels"]]
    confidences = torch.cat([b["confidences"] for b in batches]).tolist()
    losses = torch.cat([b["losses"] for b in batches]).tolist()
    predictions = [
        {
            "config": name,
            "fold": fold,
            "seed": seed,
            "file": path.name,
            "label": label,
            "prediction": text,
            "confidence": round(conf, 6),
            "loss": round(loss, 6),
        }
        for path, label, text, conf, loss in zip(data.files("test"), labels, texts, confidences, losses, strict=True)
    ]
    return row, predictions


def append_rows(path: Path, columns: list[str], rows: list[dict]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def mean_std(values: Sequence[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def summary(rows: list[dict]) -> str:
    """Mean ± std over runs of each metric, and the worst fold by test CER."""
    lines = [
        f"{len(rows)} run(s): folds {sorted({int(r['fold']) for r in rows})}, "
        f"seeds {sorted({int(r['seed']) for r in rows})}"
    ]
    lines += [f"  {metric:<18} {mean_std([float(r[metric]) for r in rows])}" for metric in SUMMARY_METRICS]
    worst = max(rows, key=lambda r: float(r["test_cer"]))
    lines.append(
        f"  worst run: fold {worst['fold']} seed {worst['seed']}: test_cer {float(worst['test_cer']):.4f}, "
        f"test_seq_acc {float(worst['test_seq_acc']):.4f}"
    )
    return "\n".join(lines)


def markdown_table(paths: Sequence[Path]) -> str:
    """One Markdown row per results file: mean ± std over its runs, the worst run, time."""

    def cell(rows: list[dict], column: str, scale: float = 100.0, digits: int = 3) -> str:
        values = [scale * float(r[column]) for r in rows]
        if len(values) == 1:
            return f"{values[0]:.{digits}f}"
        return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"

    lines = [
        "| config | runs | test CER % | whole-captcha acc. % | char. acc. % | worst test CER % | val CER % "
        "| params | epochs | s / fold | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        rows = read_rows(path)
        if not rows:
            continue
        worst = max(100 * float(r["test_cer"]) for r in rows)
        lines.append(
            f"| {rows[0]['config']} | {len(rows)} | {cell(rows, 'test_cer')} | {cell(rows, 'test_seq_acc', digits=2)} "
            f"| {cell(rows, 'test_char_acc', digits=2)} | {worst:.3f} | {cell(rows, 'val_cer')} "
            f"| {int(rows[0]['params']) / 1e6:.2f} M | {rows[0]['epochs']} "
            f"| {cell(rows, 'train_seconds', 1, 0)} | {cell(rows, 'seconds_per_epoch', 1, 1)} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="Cross-validate a LightningCLI config over folds and seeds; extra arguments "
        "(e.g. --model.head=ctc) are passed to every run.",
    )
    parser.add_argument(
        "--config", action="append", help="config file; repeat to layer an ablation on top of a base config"
    )
    parser.add_argument(
        "--table", type=Path, nargs="+", metavar="CSV", help="only print a Markdown table of results/*_cv.csv files"
    )
    parser.add_argument("--data_dir", help="folder of labelled captcha images")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--name", help="results name (default: stem of the last config)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    return parser.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args, overrides = parse_args(argv)
    if args.table:
        print(markdown_table(args.table))
        return
    if not args.config or not args.data_dir:
        raise SystemExit("crossval: --config and --data_dir are required (or --table to summarise results)")
    name = args.name or Path(args.config[-1]).stem
    runs_path, predictions_path = args.out / f"{name}_cv.csv", args.out / f"{name}_oof.csv"
    done = {(int(r["fold"]), int(r["seed"])) for r in read_rows(runs_path)}
    for seed in args.seeds:
        for fold in args.folds:
            if (fold, seed) in done:
                print(f"fold {fold} seed {seed}: already in {runs_path}, skipped")
                continue
            row, predictions = run_fold(args.config, args.data_dir, fold, seed, name, overrides)
            append_rows(runs_path, RUN_COLUMNS, [row])
            append_rows(predictions_path, PREDICTION_COLUMNS, predictions)
            print(
                f"fold {fold} seed {seed}: test_cer {row['test_cer']:.4f}, test_seq_acc {row['test_seq_acc']:.4f}, "
                f"{row['epochs']} epochs in {row['train_seconds']:.0f} s"
            )
    print(summary(read_rows(runs_path)))


if __name__ == "__main__":
    main()
