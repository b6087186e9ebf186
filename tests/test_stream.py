"""Training on fewer labels (``train_size``) and on a generated stream (``train_stream``)."""

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.data.split import fold_split, subsample
from captcha_ocr.data.stream import EpochBatches, GeneratedBatches, stream_seed
from captcha_ocr.data.synth import draw_captchas, synthesize
from captcha_ocr.reading.tokenizer import Tokenizer
from captcha_ocr.training.system import CaptchaSystem

from .helpers import GENERATED_CHARSET as CHARSET


def test_subsamples_are_nested_and_bounded() -> None:
    train = fold_split(1040, fold=1).train
    sizes = [subsample(train, size, seed=0) for size in (50, 100, 400)]
    assert [len(s) for s in sizes] == [50, 100, 400]
    assert set(sizes[0]) < set(sizes[1]) < set(sizes[2]) < set(train)
    assert subsample(train, 50, seed=1) != sizes[0]
    for size in (0, len(train) + 1):
        with pytest.raises(ValueError, match="train_size must be in"):
            subsample(train, size)


def test_train_size_leaves_validation_and_test_parts_unchanged(make_folder) -> None:
    folder = make_folder([f"{i:05d}" for i in range(60)])
    full = CaptchaDataModule(data_dir=str(folder), charset="0123456789")
    fewer = CaptchaDataModule(data_dir=str(folder), charset="0123456789", train_size=10)
    for data in (full, fewer):
        data.setup("fit")
    assert len(fewer.files("train")) == 10 and set(fewer.files("train")) < set(full.files("train"))
    assert fewer.files("val") == full.files("val") and fewer.files("test") == full.files("test")


def stream(seed: int = 0, batch_size: int = 4) -> GeneratedBatches:
    return GeneratedBatches(Tokenizer(CHARSET, 4, 6), batch_size, 32, 96, crop_to_text=True, seed=seed)


def test_stream_is_reproducible_and_new_every_epoch() -> None:
    images, targets = stream()[(3, 1)]
    assert images.shape == (4, 1, 32, 96) and images.dtype == torch.float32 and targets.shape == (4, 6)
    again_images, again_targets = stream()[(3, 1)]
    assert torch.equal(images, again_images) and torch.equal(targets, again_targets)
    for other in (stream()[(4, 1)], stream()[(3, 2)], stream(seed=1)[(3, 1)]):
        assert not torch.equal(other[1], targets)


def test_stream_does_not_touch_the_callers_random_state() -> None:
    import random

    random.seed(5)
    expected = random.random()
    random.seed(5)
    stream()[(0, 0)]
    assert random.random() == expected


def test_stream_batches_do_not_depend_on_the_number_of_workers() -> None:
    def batches(workers: int) -> list[torch.Tensor]:
        sampler = EpochBatches(4)
        sampler.set_epoch(2)
        loader = torch.utils.data.DataLoader(stream(), batch_size=None, sampler=sampler, num_workers=workers)
        return [targets for _, targets in loader]

    in_process, two_workers = batches(0), batches(2)
    assert len(in_process) == 4
    assert all(torch.equal(a, b) for a, b in zip(in_process, two_workers, strict=True))


def test_fixed_validation_and_test_images_are_never_drawn_by_the_stream(tmp_path: Path) -> None:
    """The drawn folder (validation and test parts) and 3 epochs of the stream share no image."""
    folder = synthesize(tmp_path / "fixed", 30, CHARSET, 4, 6, seed=0, progress=False)
    fixed = {np.asarray(Image.open(path).convert("RGB")).tobytes() for path in folder}
    drawn = [
        np.asarray(image).tobytes()
        for epoch in range(3)
        for batch in range(3)
        for _, image in draw_captchas(8, CHARSET, 4, 6, stream_seed(0, epoch, batch))
    ]
    assert len(set(drawn)) == len(drawn) == 72
    assert not fixed & set(drawn)


class FirstTargets(pl.Callback):
    """Keeps the targets of the first batch of every epoch."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx == 0:
            self.by_epoch[trainer.current_epoch] = batch[1].clone()


@pytest.mark.slow
def test_fit_on_a_stream_sees_the_epochs_batches(tmp_path: Path) -> None:
    """Lightning hands the epoch to the stream's sampler: epoch e trains on batches (e, 0), (e, 1)."""
    data = CaptchaDataModule(data_dir=str(tmp_path / "drawn"), synthetic_size=30, charset=CHARSET, min_length=4,
                             max_length=6, width=96, batch_size=8, train_stream=16, stream_seed=3)  # fmt: skip
    model = CaptchaSystem(charset=CHARSET, min_length=4, max_length=6, width=96, channels=(8, 8, 8), lstm_hidden=8)
    seen = FirstTargets()
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[seen])  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 4
    expected = GeneratedBatches(data.tokenizer, 8, 32, 96, crop_to_text=True, seed=3)
    for epoch in (0, 1):
        assert torch.equal(seen.by_epoch[epoch], expected[(epoch, 0)][1])
