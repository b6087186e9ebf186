"""Training on other captchas: other charsets, variable lengths, CSV labels, synthetic data."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.data.synth import parse_lengths, synthesize
from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.reading.tokenizer import Tokenizer
from captcha_ocr.training.lightning_cli import CaptchaCLI
from captcha_ocr.training.system import CaptchaSystem

from .helpers import ROOT, draw_captcha, random_labels


def test_variable_length_round_trip_and_padding() -> None:
    tokenizer = Tokenizer("AB12", min_length=2, max_length=4)
    encoded = tokenizer.encode(["AB", "B12A", "1A2"])
    assert encoded.tolist() == [[1, 2, 0, 0], [2, 3, 4, 1], [3, 1, 4, 0]]
    assert tokenizer.decode(encoded) == ["AB", "B12A", "1A2"]


def test_variable_length_loss_counts_the_end_once_and_metrics_ignore_padding() -> None:
    system = CaptchaSystem(charset="AB", min_length=1, max_length=4, head="position")
    targets = torch.from_numpy(system.tokenizer.encode(["AB"]))  # A, B, end, (ignored)
    logits = torch.full((1, 4, 3), -20.0)
    logits[0, 0, 1] = logits[0, 1, 2] = logits[0, 2, 0] = 20.0  # exactly "AB" then end
    logits[0, 3] = torch.tensor([0.0, 30.0, 0.0])  # anything after the end is free
    assert system.loss(logits, targets).item() < 1e-6
    assert system.decode(logits).texts == ["AB"]
    system.test_metrics.update(system.decode(logits).texts, ["AB"])
    assert float(system.test_metrics["test/cer"].compute()) == 0.0


def test_ctc_handles_variable_length() -> None:
    system = CaptchaSystem(charset="AB", min_length=1, max_length=4, head="ctc")
    path = torch.tensor([1, 0, 1, 2, 2, 0])  # "AAB"
    logits = torch.nn.functional.one_hot(path, 3).float()[None] * 20
    assert system.decode(logits).texts == ["AAB"]
    assert system.loss(logits, torch.from_numpy(system.tokenizer.encode(["AAB"]))).item() < 1e-3


def test_labels_from_csv_and_numbered_suffixes(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a.png", "b.png", "226md_1.png", "226md_2.png"):
        draw_captcha("x").save(folder / name)
    with (folder / "labels.csv").open("w", newline="") as file:
        csv.writer(file).writerows([["file", "label"], ["a.png", "bcdef"], ["b.png", "2345y"],
                                    ["226md_1.png", "226md"], ["226md_2.png", "226md"]])  # fmt: skip
    data = CaptchaDataModule(data_dir=str(folder), labels_csv=str(folder / "labels.csv"), num_folds=2, val_fraction=0.5)
    data.setup("fit")
    assert dict(zip([f.name for f in data.dataset.files], data.dataset.labels, strict=True)) == {
        "226md_1.png": "226md", "226md_2.png": "226md", "a.png": "bcdef", "b.png": "2345y"}  # fmt: skip
    for name in ("226md_3.png", "226md_4.png"):  # enough images named by their label for a validation part
        draw_captcha("x").save(folder / name)
    named = CaptchaDataModule(data_dir=str(folder), num_folds=2, skip_bad_files=True, val_fraction=0.5)
    with pytest.warns(UserWarning, match="skipped 3"):  # a.png, b.png are not labels, labels.csv no image
        named.setup("fit")
    assert named.dataset.labels == ["226md"] * 4


def test_missing_csv_row_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    draw_captcha("x").save(folder / "a.png")
    (folder / "labels.csv").write_text("file,label\n")
    data = CaptchaDataModule(data_dir=str(folder), labels_csv=str(folder / "labels.csv"))
    with pytest.raises(ValueError, match=r"a\.png: has no row in the labels CSV"):
        data.setup("fit")


def test_generator_is_deterministic_and_writes_labelled_files(tmp_path: Path) -> None:
    first = synthesize(tmp_path / "one", 12, "AB12", 2, 4, seed=5, progress=False)
    second = synthesize(tmp_path / "two", 12, "AB12", 2, 4, seed=5, progress=False)
    other = synthesize(tmp_path / "three", 12, "AB12", 2, 4, seed=6, progress=False)
    assert [p.name for p in first] == [p.name for p in second] != [p.name for p in other]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, second, strict=True))
    assert all(2 <= len(p.stem.split("_")[0]) <= 4 for p in first)
    with pytest.raises(FileExistsError):
        synthesize(tmp_path / "one", 1, "AB", 1, 1, progress=False)
    assert parse_lengths("4-6") == (4, 6) and parse_lengths("5") == (5, 5)


def test_auto_charset_is_inferred_and_stored_in_the_checkpoint(tmp_path: Path) -> None:
    data_dir = tmp_path / "synthetic"
    synthesize(data_dir, 40, "XYZ789", 3, 5, seed=1, progress=False)
    cli = CaptchaCLI(
        args=["fit", "--config", str(ROOT / "configs" / "smoke.yaml"), f"--data.data_dir={data_dir}",
              "--data.charset=auto", "--data.min_length=3", "--data.max_length=5", "--trainer.max_epochs=1",
              f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.enable_progress_bar=false"],
    )  # fmt: skip
    assert cli.model.hparams.charset == "789XYZ"
    model, spec = load_model(cli.trainer.checkpoint_callback.best_model_path)
    assert (spec.charset, spec.min_length, spec.max_length) == ("789XYZ", 3, 5)
    logits = model(torch.rand(2, 1, spec.height, spec.width))
    assert logits.shape == (2, spec.output_steps(), 7)  # six characters plus the end class
    assert np.isfinite(logits.detach().numpy()).all()


def test_synthetic_config_draws_its_data_when_missing(tmp_path: Path) -> None:
    data = CaptchaDataModule(data_dir=str(tmp_path / "drawn"), charset="AB", min_length=2, max_length=3,
                             synthetic_size=10)  # fmt: skip
    data.prepare_data()
    data.setup("fit")
    assert len(data.dataset) == 10


def test_labels_csv_problems_are_named(tmp_path: Path) -> None:
    from captcha_ocr.data.dataset import read_labels_csv

    bom = tmp_path / "bom.csv"
    bom.write_bytes("file,label\na.png,bcdef\n".encode("utf-8-sig"))  # as spreadsheets save it
    assert read_labels_csv(bom) == {"a.png": "bcdef"}
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("file, label\n./226md.png, 226md\n b827.png ,b827 \n")  # as people type them
    assert read_labels_csv(spaced) == {"226md.png": "226md", "b827.png": "b827"}
    for rows, message in (
        ("file,label\na.png\n", "line 2: a row needs a file and a label"),
        ("file,label\na.png,  \n", "line 2: a row needs a file and a label"),
        ("file,label\na.png,bcdef\na.png,bcdee\n", "line 3: a.png has two labels"),
        ("name,text\na.png,bcdef\n", "columns file,label, found name,text"),
    ):
        (tmp_path / "labels.csv").write_text(rows)
        with pytest.raises(ValueError, match=message):
            read_labels_csv(tmp_path / "labels.csv")
    folder = tmp_path / "images"
    folder.mkdir()
    draw_captcha("x").save(folder / "a.png")
    (folder / "labels.csv").write_text("file,label\na.png,AB\ngone.png,XYZ\n")
    data = CaptchaDataModule(data_dir=str(folder), labels_csv=str(folder / "labels.csv"), charset="auto")
    assert data.charset == "AB"  # the row of a file that is not there does not widen the alphabet


def test_a_checkpoint_is_not_tested_with_another_charset(tmp_path: Path) -> None:
    data_dir = tmp_path / "synthetic"
    synthesize(data_dir, 40, "XYZ789", 3, 5, seed=1, progress=False)
    common = ["--config", str(ROOT / "configs" / "smoke.yaml"), f"--data.data_dir={data_dir}", "--data.min_length=3",
              "--data.max_length=5", f"--trainer.logger.init_args.save_dir={tmp_path}",
              "--trainer.enable_progress_bar=false"]  # fmt: skip
    fit = CaptchaCLI(args=["fit", *common, "--data.charset=789XYZ", "--trainer.max_epochs=1"])
    checkpoint = fit.trainer.checkpoint_callback.best_model_path
    with pytest.raises(ValueError, match="trained with charset='789XYZ'"):
        CaptchaCLI(args=["test", *common, "--data.charset=798XYZ", f"--ckpt_path={checkpoint}"])


def test_fit_names_every_bad_file_without_a_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for label in random_labels(12):
        draw_captcha(label).save(folder / f"{label}.png")
    (folder / "bcdef.png").write_bytes(b"not an image")
    (folder / "TOOLONG7.png").write_bytes(b"")
    command = [sys.executable, str(ROOT / "main.py"), "fit", "--config", str(ROOT / "configs" / "smoke.yaml"),
               f"--data.data_dir={folder}", f"--trainer.logger.init_args.save_dir={tmp_path}"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "2 bad file(s)" in result.stderr
    assert "bcdef.png" in result.stderr and "TOOLONG7.png" in result.stderr
    assert "Traceback" not in result.stderr


def test_validation_asked_for_but_none_is_an_error_and_none_asked_for_is_a_fixed_schedule(make_folder) -> None:
    from .helpers import random_labels as labels_of

    data = CaptchaDataModule(data_dir=str(make_folder(labels_of(6))), val_fraction=0.1)
    with pytest.raises(ValueError, match="no validation images"):
        data.setup("fit")
    every = CaptchaDataModule(data_dir=str(make_folder(labels_of(30), name="all")), val_fraction=0.0, num_folds=1)
    every.setup("fit")
    assert (len(every.files("train")), every.files("val"), every.files("test")) == (30, [], [])


def test_the_data_location_comes_from_the_variable_then_make_train_then_shared(tmp_path: Path, monkeypatch) -> None:
    from captcha_ocr.data.sources import find_data_dir

    checkout = tmp_path / "main"
    made, shared = checkout / "data" / "captcha_images_v2", tmp_path / "shared" / "data" / "captcha_images_v2"
    monkeypatch.delenv("CAPTCHA_OCR_DATA", raising=False)
    assert find_data_dir(checkout) == made  # neither exists: where make train would put it
    shared.mkdir(parents=True)
    assert find_data_dir(checkout) == shared
    made.mkdir(parents=True)
    assert find_data_dir(checkout) == made
    monkeypatch.setenv("CAPTCHA_OCR_DATA", str(tmp_path / "elsewhere"))
    assert find_data_dir(checkout) == tmp_path / "elsewhere"


@pytest.mark.slow
def test_train_command_end_to_end_on_a_tiny_folder(make_folder, tmp_path: Path, capsys) -> None:
    """captcha-ocr train: labels and charset from the names, an out-of-fold estimate over every
    image, a model trained on all of them, model files that read."""
    from captcha_ocr.cli import main as cli
    from captcha_ocr.reading.reader import CaptchaReader

    labels = random_labels(30, charset="abc123", length=4)
    folder = make_folder(labels)
    args = ["train", str(folder), "--out", str(tmp_path / "run"), "--steps", "3", "--folds", "3"]
    assert cli([*args, "--from-scratch"]) == 0
    printed = capsys.readouterr().out
    assert "trained on all 30 labelled images, 3 steps from random weights" in printed
    assert "3-fold cross-validation over the 30 labels" in printed and "captcha-ocr read IMAGES --model" in printed
    for name in ("model.pt", "model.onnx", "worst.png", "estimate.csv"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    with (tmp_path / "run" / "estimate.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["file"] for row in rows) == sorted(p.name for p in folder.iterdir())  # each image once
    assert sorted(int(row["fold"]) for row in rows) == [0] * 10 + [1] * 10 + [2] * 10
    reader = CaptchaReader(tmp_path / "run" / "model.onnx", backend="onnx")
    assert reader.tokenizer.charset == "123abc" and reader.tokenizer.max_length == 4
    assert len(reader.read([folder / rows[0]["file"]])) == 1

    # fine-tuning that model onto another charset and length: the backbone is taken over
    other = make_folder(random_labels(20, seed=1, charset="xyz12", length=5), name="other")
    base = str(tmp_path / "run" / "model.pt")
    args = ["train", str(other), "--out", str(tmp_path / "tuned"), "--steps", "2", "--folds", "0", "--base", base]
    assert cli(args) == 0
    tuned = CaptchaReader(tmp_path / "tuned" / "model.pt")
    assert tuned.tokenizer.charset == "12xyz" and tuned.tokenizer.max_length == 5
    printed = capsys.readouterr().out
    assert f"from {base}" in printed and "estimated" not in printed  # --folds 0: no estimate
    assert not (tmp_path / "tuned" / "estimate.csv").exists()
    assert cli([*args[:-1], str(tmp_path / "missing.pt")]) == 2
    assert cli(args[:-2]) == 0  # by default, from the shipped base model
    assert "from base" in capsys.readouterr().out


def test_train_command_names_bad_input(make_folder, tmp_path: Path, capsys) -> None:
    from captcha_ocr.cli import main as cli

    assert cli(["train", str(tmp_path / "nowhere")]) == 2
    assert "no folder at" in capsys.readouterr().err
    assert cli(["train", str(make_folder(random_labels(5)))]) == 2
    assert "5 labelled images; at least 10 are needed" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: must be 0 or more
        cli(["train", str(tmp_path), "--folds", "-1"])
    assert "--folds: must be 0 or more, got -1" in capsys.readouterr().err
    assert cli(["train", str(make_folder(random_labels(12), name="twelve")), "--folds", "1"]) == 2
    assert "folds must be 0 (no estimate) or 2-12, got 1" in capsys.readouterr().err
    assert cli(["train", str(make_folder(random_labels(12), name="more")), "--folds", "0", "--unlabelled",
                str(tmp_path)]) == 2  # fmt: skip
    assert "self-training chooses its confidence on the estimate's readings" in capsys.readouterr().err
    assert cli(["train", str(tmp_path / "more"), "--unlabelled", str(tmp_path / "nowhere")]) == 2
    assert "--unlabelled: no folder at" in capsys.readouterr().err
    assert cli(["train", str(tmp_path / "more"), "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "--config: no file at" in capsys.readouterr().err
    assert cli(["train", str(tmp_path / "more"), "--base", "model.onnx"]) == 2
    assert "an .onnx file cannot be trained further: give its .pt file (model.pt)" in capsys.readouterr().err
    assert cli(["train", str(tmp_path / "more"), "--base", "notes.txt"]) == 2
    assert "not a .pt / .ckpt file nor a shipped model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["train", str(tmp_path / "more"), "--seed", "-5"])
    assert "--seed: must be 0 or more, got -5" in capsys.readouterr().err


def test_train_writes_its_runs_outside_the_folder_it_trains_on(tmp_path: Path, monkeypatch) -> None:
    from captcha_ocr.cli import default_train_out

    folder = tmp_path / "captchas"
    (folder / "sub").mkdir(parents=True)
    monkeypatch.chdir(folder)
    assert default_train_out(Path(".")) == tmp_path / "runs" / "captchas"
    monkeypatch.chdir(folder / "sub")
    assert default_train_out(Path("..")) == tmp_path / "runs" / "captchas"
    monkeypatch.chdir(tmp_path)
    assert default_train_out(Path("captchas")) == tmp_path / "runs" / "captchas"


def test_the_schedule_grows_with_a_large_folder_only() -> None:
    from captcha_ocr.training.train import schedule_steps

    # 53 passes of batches of 32, at least 200 steps: 53 x 121 / 32 = 200.4
    assert [schedule_steps(n) for n in (10, 50, 120, 121, 600)] == [200, 200, 200, 201, 994]


def test_fine_tuning_ships_the_moving_average_of_its_weights(make_folder, tmp_path: Path) -> None:
    """captcha-ocr train from a base model keeps an exponential moving average of the weights
    along its schedule, and the model it returns (and writes) is that average, not the last step;
    the recipe from scratch keeps none."""
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from captcha_ocr.reading.spec import ModelSpec
    from captcha_ocr.training.train import fit, labelled_images, save

    folder = make_folder(random_labels(12, charset="abc123", length=4))
    labelled = labelled_images(folder)
    scratch, _ = fit(folder, None, labelled, tmp_path, "scratch", steps=1, seed=0, base=None, head="map",
                     progress=False)  # fmt: skip
    assert not any(isinstance(c, EMAWeightAveraging) for c in scratch.trainer.callbacks)
    base, _ = save(scratch.model, ModelSpec.from_dict(scratch.hparams), tmp_path)
    tuned, _ = fit(folder, None, labelled, tmp_path, "tuned", steps=3, seed=0, base=base, head="map",
                   progress=False)  # fmt: skip
    (averaging,) = [c for c in tuned.trainer.callbacks if isinstance(c, EMAWeightAveraging)]
    averaged, shipped = averaging._average_model.module.state_dict(), tuned.state_dict()
    assert shipped.keys() == averaged.keys()
    assert all(torch.equal(shipped[name], averaged[name]) for name in shipped)
    assert not torch.equal(tuned.model.stem[0].weight, scratch.model.stem[0].weight)  # it moved from its base


def test_a_config_shapes_the_network_and_fine_tuning_takes_the_base_models(make_folder, tmp_path: Path) -> None:
    """train --config layers a config on the recipe (the base model's network); a model fine-tuned
    from that base gets the base's architecture and input whatever the recipe says, since every
    weight is copied from it."""
    from captcha_ocr.reading.spec import ModelSpec
    from captcha_ocr.training.train import fit, labelled_images, save

    config = tmp_path / "narrow.yaml"
    config.write_text("model:\n  channels: [8, 16, 24]\n  lstm_hidden: 16\n  flatten_height: true\n"
                      "data:\n  width: 96\n")  # fmt: skip
    folder = make_folder(random_labels(12, charset="abc123", length=4))
    labelled = labelled_images(folder)
    scratch, _ = fit(folder, None, labelled, tmp_path, "scratch", steps=1, seed=0, base=None, head="map",
                     progress=False, config=config)  # fmt: skip
    base_spec = ModelSpec.from_dict(scratch.hparams)
    shape = (base_spec.channels, base_spec.lstm_hidden, base_spec.flatten_height, base_spec.width)
    assert shape == ((8, 16, 24), 16, True, 96)
    base, _ = save(scratch.model, base_spec, tmp_path)
    tuned, _ = fit(folder, None, labelled, tmp_path, "tuned", steps=1, seed=0, base=base, head="map", progress=False)
    assert ModelSpec.from_dict(tuned.hparams) == base_spec
    assert tuned.model.rnn.weight_ih_l0.shape == (4 * 16, 24 * 4)  # the LSTM reads 24 channels x 4 rows
