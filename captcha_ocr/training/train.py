"""Train a reader on a folder of your own labelled captchas, for people who are not running
experiments: ``captcha-ocr train DIR``.

The labels come from the file names (``226md.png``) or a ``file,label`` CSV; the charset and the
label lengths are found from them. A small folder cannot spare a fifth for testing, so every label
trains the model that ships, and its accuracy is estimated by k-fold cross-validation across the
folder: k models, each trained the same way on the other folds, read the fold they never saw. Every
run follows one fixed schedule (``steps`` optimizer steps, no checkpoint choice), so the estimate
measures the very recipe that trains the shipped model, on (k - 1) / k of the labels: it errs, if at
all, on the pessimistic side. The recipe is the default experiment's
(``training/recipes/crnn.yaml``, linked as ``configs/crnn.yaml``: network, optimiser, augmentation
policy), started by default from the shipped ``base`` model (``training/recipes/finetune.yaml``).

With ``unlabelled`` images of the same style (``self_training``): the model reads them, keeps the
readings above a confidence chosen on the out-of-fold readings and unchanged under the augmentation
policy, and a new model trains on the labels and those pseudo-labels; for a few rounds.
"""

import contextlib
import functools
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import ParamSpec, TypeVar

import lightning.pytorch as pl
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from captcha_ocr.analysis.errors import worst
from captcha_ocr.analysis.figures import worst_images_grid
from captcha_ocr.analysis.results import ImageResult, write_image_results
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.data.dataset import DEFAULT_LABEL_PATTERN, read_labels_csv
from captcha_ocr.data.sources import labelled_files
from captcha_ocr.model.checkpoint import read_checkpoint, save_model
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.model.transfer import ARCHITECTURE, HeadInit
from captcha_ocr.reading.spec import ModelSpec
from captcha_ocr.reading.weights import model_file
from captcha_ocr.training.evaluation import evaluate
from captcha_ocr.training.lightning_cli import CaptchaCLI
from captcha_ocr.training.system import CaptchaSystem

RECIPE = resources.files("captcha_ocr.training") / "recipes" / "crnn.yaml"
FINETUNE = resources.files("captcha_ocr.training") / "recipes" / "finetune.yaml"
MIN_LABELS = 10
P = ParamSpec("P")
R = TypeVar("R")
RESUME_EVERY = 500  # steps between saved states of a run
# The schedule's length, chosen on the design style (generate_captcha): 200 optimizer steps at
# least (from 50 or 100 labels, 600 steps read no better and 1500 worse), and for a larger folder
# PASSES over it (600 labels: 75.7 % whole after 200 steps, 86.7 % after 1000, i.e. 53 passes).
MIN_STEPS, PASSES = 200, 53
# Pseudo-labels are kept above the highest confidence of a wrong out-of-fold reading, and never
# below this.
MIN_PSEUDO_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Estimate:
    """How the recipe reads images it was not trained on, from k-fold cross-validation across the
    folder (each image read once, by the model of the folds that left it out)."""

    images: int
    folds: int
    cer: float
    whole_acc: float


@dataclass(frozen=True)
class TrainedModel:
    """What ``train_folder`` leaves in its output folder, and the estimate of how well it reads."""

    weights: Path
    onnx: Path | None
    labelled_images: int
    estimate: Estimate | None
    worst_images: Path | None
    pseudo_labels: tuple[int, ...]  # kept in each round of self-training
    steps: int
    seconds: float


@dataclass(frozen=True)
class Labelled:
    """A folder's labelled images: each file and its label."""

    files: list[Path]
    labels: list[str]

    @property
    def charset(self) -> str:
        return "".join(sorted(set("".join(self.labels))))

    @property
    def lengths(self) -> tuple[int, int]:
        return min(map(len, self.labels)), max(map(len, self.labels))


def labelled_images(data_dir: Path, labels_csv: Path | None = None) -> Labelled:
    """The labelled images of a folder: labels from ``labels_csv`` when given, else the file names.

    Raises:
        ValueError: A file name that is not a label, or fewer than ``MIN_LABELS`` images.
    """
    table = read_labels_csv(labels_csv) if labels_csv is not None else None
    pairs = labelled_files(data_dir, DEFAULT_LABEL_PATTERN, table)
    if len(pairs) < MIN_LABELS:
        raise ValueError(
            f"{data_dir}: {len(pairs)} labelled images; at least {MIN_LABELS} are needed (50 or more to read well)"
        )
    return Labelled([path for path, _ in pairs], [label for _, label in pairs])


class Progress(pl.Callback):
    """One line at every tenth of the steps: the step, the training loss and the time left."""

    def __init__(self, name: str) -> None:
        self.name = name

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()
        self.every = max(trainer.max_steps // 10, 1)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args) -> None:
        step = trainer.global_step
        if step % self.every and step != trainer.max_steps:
            return
        elapsed = time.perf_counter() - self.start
        loss = float(trainer.callback_metrics.get("train/loss_step", float("nan")))
        left = elapsed / step * (trainer.max_steps - step)
        print(f"{self.name}: step {step}/{trainer.max_steps}, training loss {loss:.3f}, {elapsed:.0f} s so far, "
              f"{left:.0f} s left", flush=True)  # fmt: skip


def fit(
    data_dir: Path,
    labels_csv: Path | None,
    labelled: Labelled,
    out: Path,
    name: str,
    steps: int,
    seed: int,
    base: str | Path | None,
    head: HeadInit,
    progress: bool,
    lr: float | None = None,
    resume: bool = False,
    config: Path | None = None,
    folds: int = 1,
    fold: int = 0,
) -> tuple[CaptchaSystem, CaptchaDataModule]:
    """Train the recipe (with ``config`` layered on it) for ``steps`` on every image of
    ``data_dir`` but fold ``fold`` of ``folds`` (``folds=1``: on all of them), with no validation
    and no checkpoint choice. Fine-tuning from ``base`` gives the network ``base``'s architecture.

    Every ``RESUME_EVERY`` steps the run's state is saved to ``out/resume/<name>/last.ckpt`` (and
    removed when the run ends); ``resume`` continues from that state if it is there."""
    (shortest, longest), configs = labelled.lengths, [RECIPE] if base is None else [RECIPE, FINETUNE]
    configs += [config] if config is not None else []
    args = [
        *(arg for file in configs for arg in ("--config", str(file))),
        f"--data.data_dir={data_dir}", f"--data.charset={labelled.charset}",
        f"--data.min_length={shortest}", f"--data.max_length={longest}",
        f"--data.num_folds={folds}", f"--data.fold={fold}", "--data.val_fraction=0", "--data.expected_files=0",
        f"--seed_everything={seed}", f"--trainer.max_steps={steps}", "--trainer.max_epochs=-1",
        "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
        f"--trainer.enable_progress_bar={str(progress).lower()}", "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={out}", f"--trainer.logger.init_args.name={name}",
    ]  # fmt: skip
    if labels_csv is not None:
        args.append(f"--data.labels_csv={labels_csv}")
    if lr is not None:
        args.append(f"--model.optimizer.init_args.lr={lr}")
    if base is not None:
        args += [f"--model.base={base}", f"--model.base_head={head}", *architecture_args(base)]
    with warnings.catch_warnings():  # the arguments are this function's, on purpose
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli = CaptchaCLI(args=args, run=False)
    trainer, system, data = cli.trainer, cli.model, cli.datamodule
    # A fixed schedule chooses no checkpoint: the model is taken from memory at the end.
    state = out / "resume" / name
    saver = ModelCheckpoint(dirpath=state, save_top_k=0, save_last=True, every_n_train_steps=RESUME_EVERY)
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, ModelCheckpoint)] + [Progress(name), saver]
    last = state / "last.ckpt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(does not have many workers|too few batches|val_dataloader).*")
        trainer.fit(system, datamodule=data, ckpt_path=last if resume and last.is_file() else None)
    shutil.rmtree(state, ignore_errors=True)
    with contextlib.suppress(OSError):  # out/resume holds another run's state still
        state.parent.rmdir()
    return system, data


def architecture_args(base: str | Path) -> list[str]:
    """The recipe's arguments that give its network ``base``'s architecture and input (a model is
    fine-tuned from every weight of its base, so the two must match)."""
    spec = ModelSpec.from_dict(read_checkpoint(model_file(base, "torch"))["hyper_parameters"])
    owners = {"height": "data", "width": "data"}
    values = {name: getattr(spec, name) for name in ARCHITECTURE}
    return [f"--{owners.get(name, 'model')}.{name}={value if isinstance(value, str) else json.dumps(value)}"
            for name, value in values.items()]  # fmt: skip


def estimate(
    data_dir: Path,
    labels_csv: Path | None,
    labelled: Labelled,
    out: Path,
    folds: int,
    steps: int,
    seed: int,
    base: str | Path | None,
    head: HeadInit,
    progress: bool,
    lr: float | None,
    resume: bool,
    config: Path | None,
) -> list[ImageResult]:
    """Out-of-fold readings of every labelled image: fold ``i``'s images read by the model trained
    on the other folds."""
    results: list[ImageResult] = []
    for fold in range(folds):
        system, data = fit(data_dir, labels_csv, labelled, out, f"fold{fold}", steps, seed, base, head, progress, lr,
                           resume, config, folds, fold)  # fmt: skip
        results += evaluate(system.model, system.tokenizer, data.loader("test"), data.files("test"), fold=fold)
    return results


def pseudo_threshold(results: Sequence[ImageResult]) -> float:
    """The confidence above which a reading is taken as a label: above every wrong out-of-fold
    reading's, and at least ``MIN_PSEUDO_CONFIDENCE``."""
    wrong = [r.confidence for r in results if not r.correct]
    return max([MIN_PSEUDO_CONFIDENCE, *(min(c + 1e-6, 1.0) for c in wrong)])


def save(model: CaptchaNet, spec: ModelSpec, out: Path) -> tuple[Path, Path | None]:
    """``model.pt`` and, with the export extra, ``model.onnx`` in ``out``, replaced as a pair.

    Both are written under temporary names in ``out`` first; only when both are complete is the
    old ``model.onnx`` removed and the new files renamed into place (``.pt``, then ``.onnx``). So
    ``out`` never holds two files of different runs: at any instant, the old pair, the new pair,
    or (between two renames) one file alone. A failed write (a full disk) removes the temporary
    files and keeps the old pair.

    Raises:
        OSError: A file could not be written, naming it; the old pair is untouched.
    """
    weights, onnx = out / "model.pt", out / "model.onnx"
    partial_weights, partial_onnx = out / ".model.partial.pt", out / ".model.partial.onnx"
    exported = True
    try:
        save_model(model.eval(), spec, partial_weights)
        try:
            from captcha_ocr.model.export import export_onnx

            export_onnx(partial_onnx, partial_weights)
        except ImportError:  # the export extra (onnx) is not installed: the .pt file reads with torch
            exported = False
    except (OSError, RuntimeError) as error:  # torch reports a full disk as a RuntimeError
        partial_weights.unlink(missing_ok=True)
        partial_onnx.unlink(missing_ok=True)
        raise OSError(f"could not write the model into {out} ({error}); the previous model there is kept") from error
    onnx.unlink(missing_ok=True)
    partial_weights.replace(weights)
    if not exported:
        return weights, None
    partial_onnx.replace(onnx)
    return weights, onnx


class TrainingStoppedError(Exception):
    """The training was stopped by a signal before its model was written."""


def stoppable(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` with the libraries quiet and Lightning's exit on SIGTERM (a ``SystemExit``
    of code 0, as if the run had succeeded) turned into ``TrainingStoppedError``."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with quiet_libraries():
                return function(*args, **kwargs)
        except SIGTERMException as error:
            raise TrainingStoppedError("stopped by SIGTERM before the model was written") from error

    return run


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Lightning's start-up lines (seed, accelerators, tips) and library deprecation warnings
    off: ``train`` prints its own progress."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*(LeafSpec|is deprecated|smaller than the logging interval).*")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def schedule_steps(images: int) -> int:
    """Optimizer steps of every run for a folder of ``images`` labels: ``MIN_STEPS``, or
    ``PASSES`` over a folder large enough to need more (beyond 120 images)."""
    batch_size = yaml.safe_load(RECIPE.read_text())["data"]["batch_size"]
    return max(MIN_STEPS, math.ceil(PASSES * images / batch_size))


@stoppable
def train_folder(
    data_dir: Path,
    out: Path,
    labels_csv: Path | None = None,
    steps: int | None = None,
    folds: int = 3,
    seed: int = 0,
    progress: bool = True,
    base: str | Path | None = "base",
    head: HeadInit = "map",
    unlabelled: Path | None = None,
    rounds: int = 2,
    lr: float | None = None,
    resume: bool = False,
    config: Path | None = None,
) -> TrainedModel:
    """Estimate the recipe's accuracy on the folder by ``folds``-fold cross-validation, then train
    the model it ships on every label (and, with ``unlabelled``, on pseudo-labels), into ``out``.

    Args:
        data_dir: Folder of labelled images.
        out: Folder for the logs, ``model.pt``, ``model.onnx``, ``estimate.csv`` (the out-of-fold
            readings) and ``worst.png`` (the worst of them).
        labels_csv: ``file,label`` rows, instead of the file names.
        steps: Optimizer steps of every training run (default: ``schedule_steps`` of the folder).
        folds: Folds of the estimate (0: no estimate; then no self-training either, which chooses
            its confidence on the estimate's readings).
        seed: Seed of the training (the folds depend only on the file names).
        progress: Show Lightning's progress bar.
        base: Start from this model's weights (a ``.pt`` / ``.ckpt`` file or a shipped model's
            name; ``None``: from scratch): its backbone, and its head's rows of the characters
            the two charsets share (``head="map"``) or a fresh head (``"reinit"``).
        head: How the head starts when fine-tuning from ``base``.
        unlabelled: Folder of unlabelled images of the same style for self-training.
        rounds: Rounds of self-training.
        lr: Peak learning rate (default: the recipe's).
        resume: Continue each interrupted run of an earlier call with the same ``out`` from its
            last saved state (every ``RESUME_EVERY`` steps) instead of starting it again.
        config: A LightningCLI config layered on the recipe (for example another network,
            ``configs/ablations/wide.yaml``); when fine-tuning, the network is ``base``'s whatever it says.

    Raises:
        ValueError: Too few labels, a bad file, or ``unlabelled`` without an estimate.
    """
    start = time.perf_counter()
    labelled = labelled_images(data_dir, labels_csv)
    if folds == 1 or folds > len(labelled.files):
        raise ValueError(f"folds must be 0 (no estimate) or 2-{len(labelled.files)}, got {folds}")
    if unlabelled is not None and not folds:
        raise ValueError("self-training chooses its confidence on the estimate's readings: it needs folds >= 2")
    out.mkdir(parents=True, exist_ok=True)
    steps = steps or schedule_steps(len(labelled.files))
    common = (steps, seed, base, head, progress, lr, resume, config)
    held_out: list[ImageResult] = []
    summary, worst_images = None, None
    if folds:
        held_out = estimate(data_dir, labels_csv, labelled, out, folds, *common)
        write_image_results(out / "estimate.csv", held_out)
        summary = Estimate(len(held_out), folds, sum(r.cer for r in held_out) / len(held_out),
                           sum(r.correct for r in held_out) / len(held_out))  # fmt: skip
        chosen = worst(held_out, 16, "loss")
        worst_images = out / "worst.png"
        by_name = {path.name: path for path in labelled.files}
        figure = worst_images_grid(chosen, [by_name[r.file] for r in chosen], title="Worst out-of-fold readings")
        figure.savefig(worst_images, dpi=110)
    system, data = fit(data_dir, labels_csv, labelled, out, "model", *common)
    kept: list[int] = []
    if unlabelled is not None:
        from captcha_ocr.training.self_training import self_train

        def fit_round(folder: Path, table: Path, name: str) -> CaptchaSystem:
            return fit(folder, table, labelled, out, name, *common)[0]

        labels = dict(zip(labelled.files, labelled.labels, strict=True))
        system, kept = self_train(system, data.augmentation, labels, unlabelled, out, pseudo_threshold(held_out),
                                  rounds, fit_round)  # fmt: skip
    weights, onnx = save(system.model, ModelSpec.from_dict(system.hparams), out)
    return TrainedModel(weights, onnx, len(labelled.files), summary, worst_images, tuple(kept), steps,
                        time.perf_counter() - start)  # fmt: skip
