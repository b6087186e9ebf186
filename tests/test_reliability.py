"""Runs that survive: resume, determinism, no leakage, several processes."""

import re
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.data.split import fold_split
from captcha_ocr.reading.tokenizer import Tokenizer
from captcha_ocr.training.lightning_cli import CaptchaCLI

from .helpers import ROOT, SMOKE, random_labels


class StopAfterEpoch(pl.Callback):
    """Stops a run as an interruption would, once the given epoch's checkpoint is written."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and not trainer.sanity_checking:
            trainer.should_stop = True


class LabelRecorder(pl.Callback):
    """Records the label of every image that reaches a training or validation step."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def _record(self, pl_module: pl.LightningModule, batch) -> None:
        self.seen.update(pl_module.tokenizer.decode(batch[1]))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._record(pl_module, batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._record(pl_module, batch)


def fit(
    folder: Path, root: Path, *extra: str, callbacks: list | None = None, ckpt_path: str | None = None
) -> CaptchaCLI:
    args = ["--config", SMOKE, f"--data.data_dir={folder}", "--trainer.max_epochs=3",
            "--trainer.limit_train_batches=null", "--trainer.limit_val_batches=null", "--trainer.deterministic=true",
            "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={root}", *extra]  # fmt: skip
    cli = CaptchaCLI(args=args, run=False, trainer_defaults={"callbacks": callbacks or []})
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)
    return cli


def val_metrics(cli: CaptchaCLI) -> dict[str, float]:
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from .helpers import draw_captcha

    path = tmp_path_factory.mktemp("images")
    for label in random_labels(45, seed=3):
        draw_captcha(label).save(path / f"{label}.png")
    return path


@pytest.mark.slow
def test_same_seed_gives_same_metrics(folder: Path, tmp_path: Path) -> None:
    first, second = fit(folder, tmp_path / "a"), fit(folder, tmp_path / "b")
    assert val_metrics(first) == val_metrics(second)
    assert val_metrics(first) != val_metrics(fit(folder, tmp_path / "c", "--seed_everything=1"))


@pytest.mark.slow
def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(folder: Path, tmp_path: Path) -> None:
    uninterrupted = fit(folder, tmp_path / "whole")
    args = ["fit", "--config", SMOKE, f"--data.data_dir={folder}", "--trainer.max_epochs=3",
            "--trainer.limit_train_batches=null", "--trainer.limit_val_batches=null", "--trainer.deterministic=true",
            "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={tmp_path}/parts"]  # fmt: skip
    interrupted = CaptchaCLI(args=args, trainer_defaults={"callbacks": [StopAfterEpoch(0)]})
    steps_per_epoch = len(interrupted.datamodule.train_dataloader())
    assert interrupted.trainer.global_step == steps_per_epoch  # stopped after the first of three epochs
    resumed = CaptchaCLI(args=[*args, "--ckpt_path=last"])  # the command a user types
    assert resumed.trainer.global_step == uninterrupted.trainer.global_step == 3 * steps_per_epoch
    assert val_metrics(resumed) == pytest.approx(val_metrics(uninterrupted), abs=1e-6)
    runs = sorted(p.name for p in (tmp_path / "parts" / "smoke").iterdir())
    assert runs == ["version_0"]  # the resumed run went on in the stopped run's folder
    with pytest.raises(ValueError, match="resume with the max_epochs"):
        CaptchaCLI(args=[*args[:4], "--trainer.max_epochs=4", *args[5:], "--ckpt_path=last"])


@pytest.mark.slow
def test_test_fold_never_reaches_training_or_validation(folder: Path, tmp_path: Path) -> None:
    recorder = LabelRecorder()
    rotate = '[{"class_path": "kornia.augmentation.RandomAffine", "init_args": {"degrees": 5.0, "scale": [0.9, 1.1]}}]'
    interrupted = fit(folder, tmp_path, f"--data.augmentations={rotate}", callbacks=[recorder, StopAfterEpoch(0)])
    last = next(Path(interrupted.trainer.log_dir).glob("checkpoints/last.ckpt"))
    fit(folder, tmp_path, callbacks=[recorder], ckpt_path=str(last))
    data = interrupted.datamodule
    test_labels = {f.stem for f in data.files("test")}
    assert recorder.seen == {f.stem for f in data.files("train") + data.files("val")}
    assert not recorder.seen & test_labels


def test_split_does_not_depend_on_workers(folder: Path) -> None:
    parts = []
    for workers in (0, 2):
        data = CaptchaDataModule(data_dir=str(folder), num_workers=workers)
        data.setup("fit")
        labels = sorted(lbl for _, targets in data.train_dataloader() for lbl in data.tokenizer.decode(targets))
        parts.append((labels, data.files("val"), data.files("test")))
    assert parts[0] == parts[1]


@settings(max_examples=60, deadline=None)
@given(st.integers(5, 3000), st.integers(2, 10), st.floats(0, 0.5), st.integers(0, 2**31), st.data())
def test_split_properties(num_samples: int, num_folds: int, val_fraction: float, seed: int, data) -> None:
    num_folds = min(num_folds, num_samples)
    fold = data.draw(st.integers(0, num_folds - 1))
    split = fold_split(num_samples, fold, num_folds, val_fraction, seed)
    train, val, test = set(split.train), set(split.val), set(split.test)
    assert len(train) + len(val) + len(test) == num_samples
    assert train | val | test == set(range(num_samples))
    assert abs(len(test) - num_samples / num_folds) < 1
    assert split == fold_split(num_samples, fold, num_folds, val_fraction, seed)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="AB12xy", min_size=1, max_size=8), st.integers(1, 8))
def test_tokenizer_properties(label: str, extra: int) -> None:
    tokenizer = Tokenizer("AB12xy", 1, len(label) + extra - 1 if extra > 1 else len(label))
    assert tokenizer.decode(tokenizer.encode([label])) == [label]
    with pytest.raises(ValueError, match="outside the charset"):
        tokenizer.encode([label + "Z"])


def metrics_table(output: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"(test/\w+)\s*│\s*([0-9.e-]+)", output)}


@pytest.mark.slow
def test_ddp_on_two_processes_gives_the_single_process_metrics(folder: Path, tmp_path: Path) -> None:
    common = ["--config", SMOKE, f"--data.data_dir={folder}", f"--trainer.logger.init_args.save_dir={tmp_path}",
              "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false"]  # fmt: skip
    ddp = ["--trainer.devices=2", "--trainer.strategy=ddp"]
    run = subprocess.run([sys.executable, "main.py", "fit", *common, *ddp], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    checkpoint = next(tmp_path.glob("smoke/version_0/checkpoints/last.ckpt"))
    outputs = []
    for devices in (ddp, ["--trainer.devices=1"]):
        command = [sys.executable, "main.py", "test", *common, *devices, f"--ckpt_path={checkpoint}",
                   "--trainer.limit_test_batches=null"]  # fmt: skip
        test = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        assert test.returncode == 0, test.stderr[-3000:]
        outputs.append(metrics_table(test.stdout))
    assert outputs[0].keys() >= {"test/cer", "test/whole_acc", "test/char_acc"}
    assert outputs[0] == pytest.approx(outputs[1], abs=1e-6)
