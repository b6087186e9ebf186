"""Training batches drawn fresh by the captcha generator, never the same twice, reproducible.

Batch ``b`` of epoch ``e`` is drawn from the seed ``"stream:<seed>:<e>:<b>"``: a run sees new
images every epoch, a re-run (or a resumed run) sees the same ones, and the batches do not
depend on the number of DataLoader workers (each batch has its own seed, whichever worker draws
it). Files drawn by ``synth.synthesize`` are seeded with an integer, so the fixed validation and
test images of a drawn folder never come from the stream's seeds.

The epoch reaches the data through the sampler: Lightning calls ``set_epoch`` on a training
loader's sampler at the start of every epoch, also when a run resumes from a checkpoint.
"""

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from captcha_ocr.data.synth import draw_captchas
from captcha_ocr.reading.images import load_image
from captcha_ocr.reading.tokenizer import Tokenizer


def stream_seed(seed: int, epoch: int, batch: int) -> str:
    return f"stream:{seed}:{epoch}:{batch}"


class GeneratedBatches(Dataset):
    """Whole training batches drawn by the ``captcha`` generator, indexed by (epoch, batch).

    Args:
        tokenizer: Charset and label lengths to draw labels from, and to encode them.
        batch_size: Images per batch.
        height: Model input height.
        width: Model input width.
        crop_to_text: Prepare images as the data set's files are (``images.load_image``).
        normalize: Likewise.
        seed: Seed of the stream; another seed draws other images.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        batch_size: int,
        height: int,
        width: int,
        crop_to_text: bool,
        seed: int = 0,
        normalize: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.preparation = (height, width, crop_to_text, normalize)
        self.seed = seed

    def __getitem__(self, index: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Images (B, 1, H, W) as floats in [0, 1] and target ids (B, L) of batch ``index``."""
        t = self.tokenizer
        drawn = draw_captchas(self.batch_size, t.charset, t.min_length, t.max_length, stream_seed(self.seed, *index))
        labels, images = zip(*drawn, strict=True)
        pixels = np.stack([load_image(image, *self.preparation) for image in images])  # (B, 1, H, W) uint8
        return torch.from_numpy(pixels).float().div_(255), torch.from_numpy(t.encode(list(labels)))


class EpochBatches(Sampler[tuple[int, int]]):
    """Yields (epoch, batch) for ``num_batches`` batches of the epoch last given to ``set_epoch``."""

    def __init__(self, num_batches: int) -> None:
        super().__init__()
        self.num_batches = num_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((self.epoch, batch) for batch in range(self.num_batches))

    def __len__(self) -> int:
        return self.num_batches
