"""Train a reader on a folder of your own labelled captchas, for people who are not running
experiments: ``captcha-ocr train DIR``.

The labels come from the file names (``226md.png``) or a ``file,label`` CSV; the charset and the
label lengths are found from them. A fifth of the images (``held_out``) is set aside and never
trained on or used to choose anything; a tenth of the rest chooses the checkpoint and stops the
training when it stops improving. The recipe is the default experiment's
(``training/recipes/crnn.yaml``, linked as ``configs/crnn.yaml``: the same network, optimiser and
augmentation policy), started by default from the shipped ``base`` model, pretrained on captchas
the project draws (``training/recipes/finetune.yaml``). At the end the held-out part is read once:
its CER and whole-captcha accuracy, its worst images in a PNG grid, the model as ``model.pt`` and
``model.onnx``.
"""

import time
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import EarlyStopping

from captcha_ocr.analysis.errors import worst
from captcha_ocr.analysis.figures import worst_images_grid
from captcha_ocr.analysis.results import write_image_results
from captcha_ocr.data.dataset import DEFAULT_LABEL_PATTERN, read_labels_csv
from captcha_ocr.data.sources import folder_labels
from captcha_ocr.model.checkpoint import save_weights
from captcha_ocr.model.transfer import HeadInit
from captcha_ocr.training.evaluation import evaluate
from captcha_ocr.training.lightning_cli import CaptchaCLI

RECIPE = resources.files("captcha_ocr.training") / "recipes" / "crnn.yaml"
FINETUNE = resources.files("captcha_ocr.training") / "recipes" / "finetune.yaml"


@dataclass(frozen=True)
class TrainedModel:
    """What ``train_folder`` leaves in its output folder, and how the model did on the held-out part."""

    weights: Path
    onnx: Path | None
    worst_images: Path
    held_out_images: int
    cer: float
    whole_accuracy: float
    epochs: int
    seconds: float


class TimeLeft(pl.Callback):
    """After each epoch, one line: the epoch, the validation CER and the time left at most (the
    remaining epochs at the mean pace so far; early stopping may end sooner)."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        done = trainer.current_epoch + 1
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (trainer.max_epochs - done)
        cer = float(trainer.callback_metrics.get("val/cer", float("nan")))
        print(f"epoch {done}/{trainer.max_epochs}: validation CER {100 * cer:.2f} %, "
              f"{elapsed:.0f} s so far, at most {left:.0f} s left", flush=True)  # fmt: skip


def labels_of(data_dir: Path, labels_csv: Path | None = None) -> list[str]:
    """The label of every image of a folder: from ``labels_csv`` when given, else its file name.

    Raises:
        ValueError: No labelled images, naming the folder.
    """
    table = read_labels_csv(labels_csv) if labels_csv is not None else None
    labels = folder_labels(data_dir, DEFAULT_LABEL_PATTERN, table)
    if len(labels) < 10:
        raise ValueError(
            f"{data_dir}: {len(labels)} labelled images; at least 10 are needed (a few hundred to read well)"
        )
    return labels


def train_folder(
    data_dir: Path,
    out: Path,
    labels_csv: Path | None = None,
    max_epochs: int = 60,
    patience: int = 10,
    held_out: float = 0.2,
    seed: int = 0,
    progress: bool = True,
    base: str | Path | None = "base",
    head: HeadInit = "map",
) -> TrainedModel:
    """Train the default recipe on a folder, test it on its held-out part and export it into ``out``.

    Args:
        data_dir: Folder of labelled images.
        out: Folder for the logs, the checkpoints, ``model.pt``, ``model.onnx`` and ``worst.png``.
        labels_csv: ``file,label`` rows, instead of the file names.
        max_epochs: Longest training.
        patience: Epochs without a better validation score before stopping.
        held_out: Share of the images set aside for the final test (one fold of ``1 / held_out``).
        seed: Seed of the training (the split depends only on the file names).
        progress: Show Lightning's progress bar.
        base: Start from this model's weights (a ``.pt`` / ``.ckpt`` file or a shipped model's
            name; ``None``: from scratch): its backbone, and its head's rows of the characters
            the two charsets share (``head="map"``) or a fresh head (``"reinit"``).
        head: How the head starts when fine-tuning from ``base``.
    """
    labels = labels_of(data_dir, labels_csv)
    charset = "".join(sorted(set("".join(labels))))
    lengths = sorted(map(len, labels))
    configs = [RECIPE] if base is None else [RECIPE, FINETUNE]
    args = [
        *(arg for config in configs for arg in ("--config", str(config))),
        f"--data.data_dir={data_dir}", f"--data.charset={charset}",
        f"--data.min_length={lengths[0]}", f"--data.max_length={lengths[-1]}",
        f"--data.num_folds={round(1 / held_out)}", "--data.fold=0", "--data.expected_files=0",
        f"--seed_everything={seed}", f"--trainer.max_epochs={max_epochs}",
        f"--trainer.enable_progress_bar={str(progress).lower()}", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={out}", "--trainer.logger.init_args.name=train",
    ]  # fmt: skip
    if labels_csv is not None:
        args.append(f"--data.labels_csv={labels_csv}")
    if base is not None:
        args += [f"--model.base={base}", f"--model.base_head={head}"]
    with warnings.catch_warnings():  # the arguments are this function's, on purpose
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = CaptchaCLI(args=args, run=False)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.callbacks.insert(0, EarlyStopping(monitor="val/selection", patience=patience, mode="min"))
    trainer.callbacks.append(TimeLeft())
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    (test,) = trainer.test(model, datamodule=data, ckpt_path="best", verbose=False)
    out.mkdir(parents=True, exist_ok=True)
    results = evaluate(model.model, model.tokenizer, data.loader("test"), data.files("test"))
    write_image_results(out / "held_out.csv", results)
    chosen = worst(results, 16, "loss")
    worst_images = out / "worst.png"
    worst_images_grid(chosen, [data_dir / r.file for r in chosen], title="Held-out images, worst 16 by loss").savefig(
        worst_images, dpi=110
    )
    weights = out / "model.pt"
    save_weights(trainer.checkpoint_callback.best_model_path, weights)
    try:
        from captcha_ocr.model.export import export_onnx

        onnx = export_onnx(out / "model.onnx", weights)
    except ImportError:  # the export extra (onnx) is not installed: the .pt file reads with torch
        onnx = None
    return TrainedModel(weights, onnx, worst_images, len(results), test["test/cer"], test["test/seq_acc"],
                        trainer.current_epoch, seconds)  # fmt: skip
