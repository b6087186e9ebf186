"""Cross-validate a config over the k folds (and seeds) and record every run.

    captcha-ocr cv --config configs/crnn.yaml --data-dir ../shared/data/captcha_images_v2
    captcha-ocr cv --config configs/crnn.yaml --config configs/ablations/ctc.yaml \\
        --data-dir ../shared/data/captcha_images_v2 --folds 0 1 --seeds 0 1

For each fold and seed, one `fit` picks its checkpoint on the validation part of the train
folds; only then is the test fold read, once. Appends one row per run to
``results/<name>_cv.csv`` and the test fold's per-image predictions to
``results/<name>_oof.csv`` as each run ends, skips runs already recorded (so an interrupted
cross-validation resumes), and prints the mean ± std over the recorded runs.
"""

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from captcha_ocr.analysis.results import IMAGE_COLUMNS, RUN_COLUMNS, ImageResult, append_rows, read_rows
from captcha_ocr.training.evaluation import evaluate
from captcha_ocr.training.lightning_cli import CaptchaCLI


def run_fold(
    configs: Sequence[str], data_dir: str, fold: int, seed: int, name: str, overrides: Sequence[str] = ()
) -> tuple[dict, list[ImageResult]]:
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
        "test_whole_acc": test["test/whole_acc"],
        "test_char_acc": test["test/char_acc"],
        "test_loss": test["test/loss"],
    }
    # trainer.test left the best checkpoint's weights in the model: read the test part with them.
    predictions = evaluate(model.model, model.tokenizer, data.loader("test"), data.files("test"),
                           fold=fold, seed=seed, config=name)  # fmt: skip
    return row, predictions


def cross_validate(
    configs: Sequence[str],
    data_dir: str,
    folds: Sequence[int] = (0, 1, 2, 3, 4),
    seeds: Sequence[int] = (0,),
    name: str | None = None,
    out: Path = Path("results"),
    overrides: Sequence[str] = (),
) -> Path:
    """Run every (fold, seed) not yet in ``out/<name>_cv.csv`` (``name``: the last config's stem),
    appending its row there and its per-image test readings to ``out/<name>_oof.csv`` as it ends;
    returns the runs file. ``overrides`` (``--model.head=ctc``) go to every run."""
    name = name or Path(configs[-1]).stem
    runs_path, predictions_path = out / f"{name}_cv.csv", out / f"{name}_oof.csv"
    done = {(int(r["fold"]), int(r["seed"])) for r in read_rows(runs_path)}
    for seed in seeds:
        for fold in folds:
            if (fold, seed) in done:
                print(f"fold {fold} seed {seed}: already in {runs_path}, skipped")
                continue
            row, predictions = run_fold(configs, data_dir, fold, seed, name, overrides)
            append_rows(runs_path, RUN_COLUMNS, [row])
            append_rows(predictions_path, IMAGE_COLUMNS, (p.row() for p in predictions))
            print(
                f"fold {fold} seed {seed}: test_cer {row['test_cer']:.4f}, test_whole_acc {row['test_whole_acc']:.4f}, "
                f"{row['epochs']} epochs in {row['train_seconds']:.0f} s",
                flush=True,
            )
    return runs_path
