import csv
from pathlib import Path

import numpy as np
import pytest

from captcha_ocr.analysis import errors as analysis
from captcha_ocr.analysis.confidence import confidence_rows
from captcha_ocr.analysis.report import write_report
from captcha_ocr.analysis.results import ImageResult, read_image_results

from .helpers import draw_captcha

RESULTS = [
    ImageResult("226md.png", "226md", "226md", 0.01, 0.99),
    ImageResult("ep85x.png", "ep85x", "cp85x", 2.0, 0.3),  # one substitution at the first position
    ImageResult("nnn2b.png", "nnn2b", "nn2b", 1.5, 0.2),  # one n lost: one deletion, not three confusions
    ImageResult("bcdef.png", "bcdef", "bcdef", 0.5, 0.8),
    ImageResult("wxy78.png", "wxy78", "wxyy78", 0.9, 0.4),  # one y read twice: one insertion
]


def test_cer_and_worst_images() -> None:
    assert [r.cer for r in RESULTS] == pytest.approx([0, 0.2, 0.2, 0, 0.2])
    assert [r.file for r in analysis.worst(RESULTS, 2, by="loss")] == ["ep85x.png", "nnn2b.png"]
    assert [r.file for r in analysis.worst(RESULTS, 3, by="cer")] == ["ep85x.png", "nnn2b.png", "wxy78.png"]


def test_edits_are_aligned_as_cer_counts_them() -> None:
    assert RESULTS[1].edits() == [(0, "e", "c")]
    assert RESULTS[2].edits() == [(2, "n", "∅")]  # the lost n; "2b" after it is read right
    assert RESULTS[4].edits() == [(3, "∅", "y")]  # an extra y before label position 3
    assert ImageResult("a", "abc", "xbcd", 0, 0).edits() == [(0, "a", "x"), (3, "∅", "d")]


def test_confusions_and_the_matrix_count_each_edit_once() -> None:
    assert analysis.confusions(RESULTS) == {("e", "c"): 1, ("n", "∅"): 1, ("∅", "y"): 1}
    matrix = analysis.confusion_matrix(RESULTS, "2345678bcdefgmnpwxy")
    assert matrix.sum() == 25 - 2 + 3  # 25 label characters, 2 of them edited, 3 edits
    assert np.trace(matrix) == 23  # every character read right, and none of the edits
    n, missing, y = 14, 19, 18  # row / column indices: "n", "∅", "y"
    assert (matrix[n, missing], matrix[missing, y]) == (1, 1)


def test_error_rates_by_position_and_character() -> None:
    # ep85x wrong at 0, nnn2b loses position 2; the insertion in wxy78 is no label character's error
    assert analysis.error_rate_by_position(RESULTS) == pytest.approx({0: 0.2, 1: 0, 2: 0.2, 3: 0, 4: 0})
    by_character = analysis.error_rate_by_character(RESULTS)
    assert by_character["e"] == pytest.approx(1 / 2)  # wrong in ep85x, right in bcdef
    assert by_character["n"] == pytest.approx(1 / 3)  # three n in nnn2b, one lost
    assert by_character["y"] == 0 and by_character["6"] == 0


def test_summary_wrong_characters_are_the_cer_numerator() -> None:
    numbers = analysis.summary(RESULTS)
    assert numbers["cer"] == pytest.approx(3 / 25)
    assert numbers["whole_acc"] == 0.4
    assert (numbers["wrong_images"], numbers["wrong_characters"]) == (3, 3)


def test_text_summary_scores_bare_readings_as_summary_scores_records() -> None:
    texts, labels = [r.text for r in RESULTS], [r.label for r in RESULTS]
    assert analysis.text_summary(texts, labels) == analysis.summary(RESULTS)
    with pytest.raises(ValueError):
        analysis.text_summary(texts[:2], labels)


def test_confidence_rows_keep_the_most_confident_first() -> None:
    correct = np.array([1, 0, 1, 1, 0])
    confidence = np.array([0.95, 0.9, 0.6, 0.99, 0.2])  # most confident: 3 (right), 0 (right), 1 (wrong), 2, 4
    rows = confidence_rows(correct, confidence, coverages=(0.4, 0.6, 1.0), thresholds=(0.5, 0.92))
    by_coverage = {r["coverage"]: (r["accuracy"], r["threshold"]) for r in rows if r["kind"] == "coverage"}
    assert by_coverage == {0.4: (1.0, 0.95), 0.6: (pytest.approx(2 / 3, abs=1e-5), 0.9), 1.0: (0.6, 0.2)}
    at_half, at_92 = [r for r in rows if r["kind"] == "threshold"]
    assert (at_half["coverage"], at_half["right_rejected"], at_half["wrong_kept"]) == (0.8, 0.0, 0.5)
    assert (at_92["coverage"], at_92["accuracy"], at_92["right_rejected"], at_92["wrong_kept"]) == (
        0.4, 1.0, pytest.approx(1 / 3, abs=1e-5), 0.0)  # fmt: skip


def test_report_writes_tables_and_figures(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for r in RESULTS:
        draw_captcha(r.label).save(images / r.file)
    oof = tmp_path / "oof.csv"
    with oof.open("w", newline="") as file:
        writer = csv.DictWriter(file, ["config", "fold", "seed", "file", "label", "text", "confidence", "loss"])
        writer.writeheader()
        for r in RESULTS:
            writer.writerow({"config": "c", "fold": 0, "seed": 0, "file": r.file, "label": r.label,
                             "text": r.text, "confidence": r.confidence, "loss": r.loss})  # fmt: skip
    numbers = write_report(read_image_results(oof), images, tmp_path / "report", "2345678bcdefgmnpwxy", k=3)
    assert numbers["wrong_images"] == 3
    written = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"worst_by_loss.png", "confusion_matrix.png", "error_rates.png", "confusions.csv"} <= written
    with (tmp_path / "report" / "worst_by_loss.csv").open() as file:
        assert [row["file"] for row in csv.DictReader(file)] == ["ep85x.png", "nnn2b.png", "wxy78.png"]


@pytest.mark.slow
def test_report_from_a_checkpoint_evaluates_one_part(make_folder, tmp_path: Path) -> None:
    from captcha_ocr.cli import main as cli

    from .helpers import random_labels, write_tiny_weights

    folder = make_folder(random_labels(20))
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    assert (
        cli(
            [
                "report",
                "--checkpoint",
                str(weights),
                "--data-dir",
                str(folder),
                "--fold",
                "1",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    with (tmp_path / "r" / "per_image.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 4  # the test part of fold 1: a fifth of 20 images
    assert all(len(row["characters"].split()) == len(row["text"]) for row in rows)
    assert {row["file"] for row in rows} <= {f"{label}.png" for label in random_labels(20)}


@pytest.mark.slow
def test_report_takes_the_split_a_checkpoint_was_trained_with(make_folder, tmp_path: Path) -> None:
    """A model trained with another split seed and fold is reported on its own test images."""
    import lightning.pytorch as pl

    from captcha_ocr.cli import main as cli
    from captcha_ocr.data.datamodule import CaptchaDataModule
    from captcha_ocr.training.system import CaptchaSystem

    from .helpers import random_labels

    folder = make_folder(random_labels(30))
    data = CaptchaDataModule(data_dir=str(folder), fold=2, split_seed=7, val_fraction=0.2, batch_size=8)
    trainer = pl.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False)  # fmt: skip
    trainer.fit(CaptchaSystem(channels=(8, 8, 8), lstm_hidden=8), datamodule=data)
    checkpoint = trainer.checkpoint_callback.best_model_path
    assert cli(["report", "--checkpoint", checkpoint, "--data_dir", str(folder), "--out", str(tmp_path / "r")]) == 0
    with (tmp_path / "r" / "per_image.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["file"] for row in rows] == [path.name for path in data.files("test")]
    assert {row["fold"] for row in rows} == {"2"}
    default_split = CaptchaDataModule(data_dir=str(folder), fold=2)
    default_split.setup("test")
    assert [row["file"] for row in rows] != [path.name for path in default_split.files("test")]
