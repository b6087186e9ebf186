import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from captcha_ocr.analysis.results import RUN_COLUMNS, read_rows
from captcha_ocr.cli import main as command
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.training.lightning_cli import CaptchaCLI

from .helpers import ROOT, SMOKE, draw_captcha, random_labels


@pytest.mark.slow
def test_fit_fast_dev_run_on_drawn_images(make_folder, tmp_path: Path) -> None:
    folder = make_folder(random_labels(30))
    cli = CaptchaCLI(
        args=[
            "fit",
            "--config",
            SMOKE,
            f"--data.data_dir={folder}",
            "--trainer.fast_dev_run=1",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ],
    )
    assert cli.trainer.state.finished
    assert cli.model.hparams.charset == cli.datamodule.charset  # linked, not written twice
    assert "val/cer" in cli.trainer.callback_metrics


@pytest.mark.slow
def test_tensorboard_gets_error_figures_and_hparams(make_folder, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = make_folder(random_labels(30))
    cli = CaptchaCLI(
        args=["fit", "--config", SMOKE, f"--data.data_dir={folder}", "--trainer.max_epochs=1",
              f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false"],
    )  # fmt: skip
    events = EventAccumulator(cli.trainer.logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert {"val/worst_images", "val/confusions"} <= set(events.Tags()["images"])
    assert {"val/cer", "val/whole_acc", "val/char_acc", "train/loss_epoch", "hp/val/cer"} <= set(
        events.Tags()["scalars"]
    )


@pytest.mark.slow
def test_predict_writes_csv_for_a_folder(make_folder, tmp_path: Path) -> None:
    folder = make_folder(random_labels(30))
    fit = CaptchaCLI(
        args=[
            "fit",
            "--config",
            SMOKE,
            f"--data.data_dir={folder}",
            "--trainer.max_epochs=1",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    for name in ("first", "second", "third"):
        draw_captcha("226md").save(unlabelled / f"{name}.png")
    output = tmp_path / "predictions.csv"
    CaptchaCLI(
        args=[
            "predict",
            "--config",
            SMOKE,
            f"--data.data_dir={folder}",
            f"--data.predict_dir={unlabelled}",
            f"--ckpt_path={fit.trainer.checkpoint_callback.best_model_path}",
            f"--prediction_writer.output={output}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    with output.open() as file:
        rows = list(csv.DictReader(file))
    assert [Path(r["file"]).name for r in rows] == ["first.png", "second.png", "third.png"]
    assert all(0 <= float(r["confidence"]) <= 1 for r in rows)


@pytest.mark.slow
def test_fit_then_test_through_main_on_real_images(real_data: Path, tmp_path: Path) -> None:
    common = ["--config", SMOKE, f"--data.data_dir={real_data}", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    fit = subprocess.run(
        [sys.executable, "main.py", "fit", *common, "--trainer.enable_progress_bar=false"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoints = sorted(tmp_path.glob("smoke/version_0/checkpoints/best-*.ckpt"))
    assert len(checkpoints) == 1
    test = subprocess.run(
        [sys.executable, "main.py", "test", *common, f"--ckpt_path={checkpoints[0]}", "--trainer.limit_test_batches=2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert test.returncode == 0, test.stderr[-3000:]
    for metric in ("test/cer", "test/whole_acc", "test/char_acc"):
        assert metric in test.stdout


def test_help_documents_model_and_data_arguments() -> None:
    result = subprocess.run([sys.executable, "main.py", "fit", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    for text in (
        "--model.head",
        "per-position cross-entropy",
        "--data.fold",
        "--data.val_fraction",
        "Share of the train part held out for validation",
    ):
        assert text in " ".join(result.stdout.split())


def test_prepare_data_downloads_and_unpacks_an_archive(tmp_path: Path) -> None:
    labels = random_labels(6)
    archive = tmp_path / "captcha_images_v2.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for label in labels:
            draw_captcha(label).save(tmp_path / f"{label}.png")
            zipped.write(tmp_path / f"{label}.png", f"captcha_images_v2/{label}.png")
    target = tmp_path / "data" / "captcha_images_v2"
    data = CaptchaDataModule(
        data_dir=str(target), download_url=archive.as_uri(), expected_files=6, download=True, val_fraction=0.5
    )
    data.prepare_data()
    assert sorted(p.stem for p in target.iterdir()) == labels
    data.setup("fit")
    assert len(data.dataset) == 6


def test_prepare_data_fails_clearly(tmp_path: Path) -> None:
    typo = CaptchaDataModule(data_dir=str(tmp_path / "typo"), download_url=(tmp_path / "none.zip").as_uri())
    with pytest.raises(FileNotFoundError, match="typo' does not exist"):
        typo.prepare_data()  # not the default location and no --data.download: no download
    assert not (tmp_path / "typo").exists()
    missing = CaptchaDataModule(
        data_dir=str(tmp_path / "d"), download_url=(tmp_path / "none.zip").as_uri(), download=True
    )
    with pytest.raises(OSError, match="could not download the data"):
        missing.prepare_data()
    archive = tmp_path / "few.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        draw_captcha("226md").save(tmp_path / "226md.png")
        zipped.write(tmp_path / "226md.png", "captcha_images_v2/226md.png")
    short = CaptchaDataModule(
        data_dir=str(tmp_path / "d"), download_url=archive.as_uri(), expected_files=1040, download=True
    )
    with pytest.raises(OSError, match="held 1 images, expected 1040"):
        short.prepare_data()
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_crossval_records_runs_and_out_of_fold_predictions(make_folder, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = make_folder(random_labels(30))
    args = [
        "--config",
        SMOKE,
        "--data_dir",
        str(folder),
        "--folds",
        "0",
        "3",
        "--out",
        str(tmp_path / "results"),
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.max_epochs=1",
    ]
    assert command(["cv", *args]) == 0
    runs = read_rows(tmp_path / "results" / "smoke_cv.csv")
    assert [(r["fold"], r["seed"]) for r in runs] == [("0", "0"), ("3", "0")]
    assert set(RUN_COLUMNS) <= set(runs[0])
    predictions = read_rows(tmp_path / "results" / "smoke_oof.csv")
    assert len(predictions) == 12  # two test folds of 6 images each
    assert {p["label"] for p in predictions} <= set(random_labels(30))
    assert command(["cv", *args]) == 0  # recorded runs are skipped, not repeated
    assert len(read_rows(tmp_path / "results" / "smoke_cv.csv")) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == []  # nothing else written here


@pytest.mark.parametrize(
    "configs",
    [["crnn.yaml"], ["smoke.yaml"], ["synthetic.yaml"], ["synthetic_stream.yaml"], ["crnn.yaml", "gpu.yaml"]]
    + [["crnn.yaml", f"ablations/{p.name}"] for p in sorted((ROOT / "configs" / "ablations").glob("*.yaml"))],
)
def test_every_config_parses(configs: list[str], capsys) -> None:
    args = [arg for name in configs for arg in ("--config", str(ROOT / "configs" / name))]
    with pytest.raises(SystemExit) as exit_info:
        CaptchaCLI(args=["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    assert "model:" in capsys.readouterr().out


@pytest.mark.slow
def test_test_without_ckpt_path_uses_the_best_checkpoint_of_the_latest_run(make_folder, tmp_path: Path, capsys) -> None:
    folder = make_folder(random_labels(30))
    common = ["--config", SMOKE, f"--data.data_dir={folder}", f"--trainer.logger.init_args.save_dir={tmp_path}",
              "--trainer.enable_progress_bar=false"]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="no --ckpt_path given"):
        CaptchaCLI(args=["test", *common])
    CaptchaCLI(args=["fit", *common, "--trainer.max_epochs=1"])
    latest = CaptchaCLI(args=["fit", *common, "--trainer.max_epochs=1"])
    capsys.readouterr()
    tested = CaptchaCLI(args=["test", *common])
    best = latest.trainer.checkpoint_callback.best_model_path
    assert f"test: using {best}" in capsys.readouterr().err
    assert "test/cer" in tested.trainer.callback_metrics


def test_the_latest_best_checkpoint_of_a_run_or_of_any(tmp_path: Path) -> None:
    import os

    from captcha_ocr.training.lightning_cli import latest_best_checkpoint

    for index, run in enumerate(["fold0_seed0", "fold1_seed0", "fold0_seed0"]):
        checkpoint = tmp_path / run / "checkpoints" / f"best-{index}.ckpt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(b"")
        os.utime(checkpoint, (1_000 + index, 1_000 + index))
    assert latest_best_checkpoint(tmp_path).name == "best-2.ckpt"
    assert latest_best_checkpoint(tmp_path, "fold1_seed0").name == "best-1.ckpt"
    assert latest_best_checkpoint(tmp_path, "fold2_seed0") is None
