"""How many labelled captchas does a reader need? Test CER against the number of training images.

    python benchmarks/learning_curve.py --config configs/crnn.yaml \\
        --data-dir ../shared/data/captcha_images_v2 --sizes 50 100 200 400 --full results/crnn_cv.csv

For every size, fold and seed, trains the config on a subsample of the fold's training part
(``--data.train_size``: nested subsamples, the same validation and test parts at every size) and
appends the run to ``--out`` as it ends (recorded runs are skipped, so an interrupted curve
resumes). ``--steps`` trains every size for the same number of optimizer steps instead of the
config's epochs. ``--full`` adds the runs of a cross-validation file of the same config on the whole
training part. Writes the mean ± std per size to ``<out>_summary.csv``, plots test CER against
training images (log-log) and prints the summary as a Markdown table.
"""

import argparse
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from captcha_ocr.analysis.results import RUN_COLUMNS, append_rows, read_rows, write_rows
from captcha_ocr.data.split import fold_split
from captcha_ocr.reading.listing import image_files
from captcha_ocr.training.crossval import run_fold

COLUMNS = ["train_size", *RUN_COLUMNS]
SUMMARY_COLUMNS = ["train_size", "runs", "test_cer_mean", "test_cer_std", "test_whole_acc_mean", "test_whole_acc_std",
                   "train_seconds_mean"]  # fmt: skip


def full_training_size(data_dir: str, fold: int) -> int:
    """Images in a fold's whole training part under the default split."""
    return len(fold_split(len(image_files(data_dir)), fold).train)


def summarize(rows: list[dict]) -> list[dict]:
    """Mean ± std of test CER and whole-captcha accuracy for each training size."""

    def std(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else float("nan")

    table = []
    for size in sorted({int(r["train_size"]) for r in rows}):
        runs = [r for r in rows if int(r["train_size"]) == size]
        cer = [float(r["test_cer"]) for r in runs]
        seq = [float(r["test_whole_acc"]) for r in runs]
        table.append(
            {
                "train_size": size,
                "runs": len(runs),
                "test_cer_mean": statistics.mean(cer),
                "test_cer_std": std(cer),
                "test_whole_acc_mean": statistics.mean(seq),
                "test_whole_acc_std": std(seq),
                "train_seconds_mean": statistics.mean(float(r["train_seconds"]) for r in runs),
            }
        )
    return table


def plot(curves: dict[str, list[dict]], title: str, path: Path) -> None:
    """Test CER (mean ± std over runs) against training images, one line per named curve."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for label, table in curves.items():
        sizes = [row["train_size"] for row in table]
        cer = [100 * row["test_cer_mean"] for row in table]
        err = [100 * (row["test_cer_std"] if row["runs"] > 1 else 0.0) for row in table]
        line = axes.errorbar(sizes, cer, yerr=err, marker="o", capsize=3, label=label)
        for size, value, row in zip(sizes, cer, table, strict=True):
            axes.annotate(f"{value:.2f} % ({row['runs']})", (size, value), textcoords="offset points",
                          xytext=(4, 6), fontsize=7, color=line[0].get_color())  # fmt: skip
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="1 % CER")
    sizes = sorted({row["train_size"] for table in curves.values() for row in table})
    axes.set(xscale="log", yscale="log", xlabel="labelled training images",
             ylabel="test CER %, mean ± std over runs (runs)", title=title)  # fmt: skip
    axes.set_xticks(sizes, [str(s) for s in sizes])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def markdown(table: list[dict]) -> str:
    def cell(row: dict, metric: str, digits: int) -> str:
        mean, std = 100 * row[f"{metric}_mean"], 100 * row[f"{metric}_std"]
        return f"{mean:.{digits}f}" if row["runs"] == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"

    lines = ["| training images | runs | test CER % | whole-captcha acc. % | s / run |", "|---|---|---|---|---|"]
    lines += [
        f"| {row['train_size']} | {row['runs']} | {cell(row, 'test_cer', 2)} | {cell(row, 'test_whole_acc', 1)} "
        f"| {row['train_seconds_mean']:.0f} |"
        for row in table
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", required=True, help="config file; repeat to layer configs")
    parser.add_argument(
        "--data-dir", "--data_dir", dest="data_dir", required=True, help="folder of labelled captcha images"
    )
    parser.add_argument("--sizes", type=int, nargs="+", required=True, help="training images per run")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--steps",
        type=int,
        help="train every size for about this many optimizer steps (epochs = steps / batches per epoch), so that "
        "sizes compare at equal compute; default: the config's max_epochs at every size",
    )
    parser.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=int,
        default=32,
        help="the config's batch size, for --steps",
    )
    parser.add_argument("--full", type=Path, help="cross-validation runs of the same config on the whole training part")
    parser.add_argument("--name", help="results name (default: stem of the last config)")
    parser.add_argument("--out", type=Path, help="runs file (default: results/learning_curve_<name>.csv)")
    parser.add_argument("--plot", type=Path, help="figure (default: docs/learning_curve_<name>.png)")
    parser.add_argument("--label", help="this curve's name in the figure (default: the results name)")
    parser.add_argument("--beside", nargs=2, action="append", default=[], metavar=("LABEL", "CSV"),
                        help="also plot the runs of another curve (its runs file); repeatable")  # fmt: skip
    args, overrides = parser.parse_known_args(argv)
    name = args.name or Path(args.config[-1]).stem
    out = args.out or Path("results") / f"learning_curve_{name}.csv"
    done = {(int(r["train_size"]), int(r["fold"]), int(r["seed"])) for r in read_rows(out)}
    for size in args.sizes:
        for seed in args.seeds:
            for fold in args.folds:
                if (size, fold, seed) in done:
                    continue
                run_name, run_overrides = f"learning_curve/{name}_n{size}", [f"--data.train_size={size}", *overrides]
                if args.steps:
                    epochs = max(1, round(args.steps / math.ceil(size / args.batch_size)))
                    # about 25 validations per run: a tiny training part makes an epoch of one step
                    run_overrides += [f"--trainer.max_epochs={epochs}",
                                      f"--trainer.check_val_every_n_epoch={max(1, epochs // 25)}"]  # fmt: skip
                row, _ = run_fold(args.config, args.data_dir, fold, seed, run_name, run_overrides)
                append_rows(out, COLUMNS, [{"train_size": size, **row}])
                print(f"{size} images, fold {fold} seed {seed}: test_cer {row['test_cer']:.4f}", flush=True)
    rows = read_rows(out)
    if args.full:
        full = [r for r in read_rows(args.full) if int(r["seed"]) in args.seeds and int(r["fold"]) in args.folds]
        rows += [{"train_size": full_training_size(args.data_dir, int(r["fold"])), **r} for r in full]
    table = summarize(rows)
    summary_path = out.with_name(f"{out.stem}_summary.csv")
    write_rows(summary_path, SUMMARY_COLUMNS, table)
    curves = {args.label or name: table}
    curves.update({label: summarize(read_rows(Path(csv))) for label, csv in args.beside})
    steps = f", {args.steps} steps a run" if args.steps else ""
    plot(curves, f"Learning curve, {args.data_dir.rstrip('/').split('/')[-1]}{steps}",
         args.plot or Path("docs") / f"learning_curve_{name}.png")  # fmt: skip
    print(markdown(table))


if __name__ == "__main__":
    main()
