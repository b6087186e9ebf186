import random
from pathlib import Path

import pytest

from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.data.split import fold_split


def test_real_data_split_is_832_208_with_disjoint_parts(real_data: Path) -> None:
    data = CaptchaDataModule(data_dir=str(real_data), val_fraction=0.1)
    data.setup("fit")
    train, val, test = (set(data.files(part)) for part in ("train", "val", "test"))
    assert (len(train) + len(val), len(test)) == (832, 208)
    assert len(val) == round(832 * 0.1)
    assert not (train & val or train & test or val & test)
    assert len(train | val | test) == 1040


def test_split_is_identical_across_builds() -> None:
    assert fold_split(1040, fold=2, seed=7) == fold_split(1040, fold=2, seed=7)
    assert fold_split(1040, fold=2, seed=7) != fold_split(1040, fold=2, seed=8)


@pytest.mark.parametrize("num_samples", [1040, 1043, 11])
def test_test_folds_partition_all_samples(num_samples: int) -> None:
    tests = [fold_split(num_samples, fold, seed=3).test for fold in range(5)]
    assert sorted(i for t in tests for i in t) == list(range(num_samples))
    assert max(map(len, tests)) - min(map(len, tests)) <= 1


def test_split_of_files_does_not_depend_on_listing_order(make_folder, monkeypatch) -> None:
    from .helpers import random_labels

    folder = make_folder(random_labels(40))
    data = CaptchaDataModule(data_dir=str(folder), fold=1)
    data.setup("fit")
    expected = {part: data.files(part) for part in ("train", "val", "test")}

    real_iterdir = Path.iterdir

    def shuffled_iterdir(self: Path):
        entries = list(real_iterdir(self))
        random.Random(1).shuffle(entries)
        return iter(entries)

    monkeypatch.setattr(Path, "iterdir", shuffled_iterdir)
    shuffled = CaptchaDataModule(data_dir=str(folder), fold=1)
    shuffled.setup("fit")
    assert {part: shuffled.files(part) for part in expected} == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fold": 5}, "fold must be in"),
        ({"fold": -1}, "fold must be in"),
        ({"num_folds": 0, "fold": 0}, "num_folds"),
        ({"val_fraction": 1.0, "fold": 0}, "val_fraction"),
        ({"num_samples": 3, "fold": 0}, "at least 5 samples"),
    ],
)
def test_invalid_split_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fold_split(**{"num_samples": 100, **kwargs})
