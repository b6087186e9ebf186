"""Every label used and unlabelled images put to work: the out-of-fold estimate's threshold for
pseudo-labels, the pseudo-labelling, and self-training end to end on a tiny drawn set."""

import csv
import math
from pathlib import Path

import pytest
import torch

from captcha_ocr.analysis.results import ImageResult
from captcha_ocr.training import self_training, train
from captcha_ocr.training.system import CaptchaSystem

from .helpers import draw_captcha, random_labels


def result(label: str, prediction: str, confidence: float) -> ImageResult:
    return ImageResult(f"{label}.png", label, prediction, math.nan, confidence)


def test_pseudo_labels_are_kept_above_every_wrong_out_of_fold_reading() -> None:
    readings = [result("ab", "ab", 0.95), result("cd", "cx", 0.7), result("ef", "e", 0.3), result("gh", "gh", 0.6)]
    assert train.pseudo_threshold(readings) == pytest.approx(0.7 + 1e-6)
    assert train.pseudo_threshold(readings[:1]) == train.MIN_PSEUDO_CONFIDENCE  # nothing wrong: the floor


def test_write_training_folder_links_every_image_with_its_label(tmp_path: Path) -> None:
    images = []
    for name in ("a.png", "b.PNG"):
        draw_captcha("x").save(tmp_path / name, format="PNG")
        images.append(tmp_path / name)
    table = self_training.write_training_folder(tmp_path / "round", {images[0]: "226md", images[1]: "b827"})
    with table.open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["file"], row["label"]) for row in rows] == [("000000.png", "226md"), ("000001.png", "b827")]
    assert [(tmp_path / "round" / row["file"]).resolve() for row in rows] == [p.resolve() for p in images]


def test_pseudo_labels_keep_only_confident_readings_that_augmentation_does_not_change(tmp_path: Path) -> None:
    for index, label in enumerate(random_labels(6, length=5)):
        draw_captcha(label).save(tmp_path / f"u{index}.png")
    files = sorted(tmp_path.iterdir())
    system = CaptchaSystem(min_length=5, max_length=5, channels=(8, 16, 16), lstm_hidden=16)
    kept = self_training.pseudo_labels(system, None, files, threshold=0.0)
    assert set(kept) == set(files) and all(len(text) == 5 for text in kept.values())  # the trained length
    assert self_training.pseudo_labels(system, None, files, threshold=1.01) == {}

    def flip(images: torch.Tensor) -> torch.Tensor:  # a view that changes every reading's input
        return images.flip(-1)

    disagreeing = self_training.pseudo_labels(system, flip, files, threshold=0.0)
    assert set(disagreeing) <= set(kept)
    assert all(text == kept[path] for path, text in disagreeing.items())


@pytest.mark.slow
def test_self_training_end_to_end_on_a_tiny_drawn_set(tmp_path: Path, monkeypatch) -> None:
    labelled, unlabelled = tmp_path / "labelled", tmp_path / "unlabelled"
    labelled.mkdir()
    unlabelled.mkdir()
    for label in random_labels(16, charset="abc12", length=4):
        draw_captcha(label).save(labelled / f"{label}.png")
    for index, label in enumerate(random_labels(8, seed=1, charset="abc12", length=4)):
        draw_captcha(label).save(unlabelled / f"{index}.png")
    # two steps teach nothing: keep every reading, whatever its confidence and its augmented views
    monkeypatch.setattr(train, "pseudo_threshold", lambda results: 0.0)
    monkeypatch.setattr(self_training, "VIEWS", 0)
    trained = train.train_folder(labelled, tmp_path / "run", steps=2, folds=2, progress=False, base=None,
                                 unlabelled=unlabelled, rounds=1)  # fmt: skip
    assert trained.estimate is not None and trained.estimate.images == 16
    assert trained.pseudo_labels == (8,)
    kept = 8
    with (tmp_path / "run" / "self_training" / "round1" / "labels.csv").open() as file:
        assert sum(1 for _ in csv.DictReader(file)) == 16 + kept  # every label and the pseudo-labels
    assert trained.weights.stat().st_size > 0 and trained.onnx is not None
