"""The data module: which files, how they are split into folds, how they are batched."""

import math
from dataclasses import replace
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from captcha_ocr.data.dataset import (
    DEFAULT_LABEL_PATTERN,
    CaptchaDataset,
    check_label_pattern,
    read_labels_csv,
)
from captcha_ocr.data.sources import CAPTCHA_IMAGES_V2_URL, charset_of_labels, download_folder
from captcha_ocr.data.split import Split, fold_split, subsample
from captcha_ocr.data.stream import EpochBatches, GeneratedBatches
from captcha_ocr.data.synth import synthesize
from captcha_ocr.reading.listing import list_files
from captcha_ocr.reading.tokenizer import DEFAULT_CHARSET, Tokenizer

DEFAULT_DATA_DIR = "data/captcha_images_v2"


class CaptchaDataModule(pl.LightningDataModule):
    """Captcha images from one folder, split for one fold of a k-fold cross-validation.

    The files are sorted by name and shuffled by ``split_seed``; fold ``fold`` of ``num_folds``
    equal parts is the test set, and ``val_fraction`` of the rest is the validation set that
    picks checkpoints. The split depends only on the file names, ``split_seed`` and ``fold``.

    Args:
        data_dir: Folder of images named after their text (``226md.png``).
        charset: Characters a label may contain, or ``auto``: the sorted characters of the
            folder's labels. The model stores it, so prediction decodes with the same table.
        min_length: Shortest label.
        max_length: Longest label.
        height: Model input height; every image is resized to ``height`` x ``width``.
        width: Model input width.
        normalize: Turn every image into dark ink on an even white page before cropping
            (``images.normalize_page``), so that light-on-dark files, shadows and gradients do not
            matter. The model stores it, like ``crop_to_text``.
        fold: Which part of the k-fold partition is the test set.
        num_folds: Number of parts; 5 gives the 4:1 train : test split, 1 no test part.
        val_fraction: Share of the train part held out for validation (0: none; the trainer then
            runs a fixed schedule with ``limit_val_batches=0``).
        split_seed: Seed of the partition (kept apart from the training seed, so that runs with
            other training seeds see the same folds).
        batch_size: Images per batch.
        num_workers: DataLoader worker processes. The images are decoded once into memory, so 0
            (load in the training process) is fastest on a few CPU cores.
        crop_to_text: Crop every image to its text before resizing (``images.text_box``), so that
            margins, crops, scale and aspect of a file do not matter. The model stores it, so
            reading prepares images the same way.
        augmentations: The augmentation policy of training batches (never val or test):
            modules (Kornia's, or ``captcha_ocr.data.augment``'s) applied in order, each to an
            image with its own probability ``p``. Set in the config, as ``configs/crnn.yaml``
            does; none: no augmentation.
        label_pattern: Regex with a ``label`` group, matched against each file stem.
        skip_bad_files: Leave out files that are not valid samples, with a warning naming each.
        download_url: Zip archive to fetch into ``data_dir`` when the folder does not exist.
        download: Fetch ``download_url`` into a missing ``data_dir`` even when it is not the
            default location (a missing folder elsewhere is otherwise an error: a typo must not
            start a download).
        expected_files: Number of valid images the download must yield (0: any number).
        predict_dir: Folder of images for ``predict`` (names need not be labels); default: the
            test part of the fold.
        labels_csv: A ``file,label`` CSV (file names relative to ``data_dir``) to take labels from
            instead of file names.
        synthetic_size: When ``data_dir`` does not exist, draw this many synthetic captchas
            there (``captcha`` package, seeded by ``split_seed``) instead of downloading.
        train_size: Train on this many images of the training part only (drawn by ``split_seed``;
            a smaller size's images are part of every larger one); validation and test parts
            unchanged. For learning curves.
        train_stream: Train on this many images per epoch drawn fresh by the ``captcha``
            generator (``data.stream``) instead of the training part; validation and test stay
            the folder's fixed parts. For data you can generate.
        stream_seed: Seed of the generated training stream.
    """

    def __init__(
        self,
        data_dir: str = DEFAULT_DATA_DIR,
        charset: str = DEFAULT_CHARSET,
        min_length: int = 5,
        max_length: int = 5,
        height: int = 32,
        width: int = 128,
        crop_to_text: bool = True,
        normalize: bool = True,
        fold: int = 0,
        num_folds: int = 5,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        augmentations: list[nn.Module] | None = None,
        label_pattern: str = DEFAULT_LABEL_PATTERN,
        skip_bad_files: bool = False,
        download_url: str = CAPTCHA_IMAGES_V2_URL,
        download: bool = False,
        expected_files: int = 0,
        predict_dir: str | None = None,
        labels_csv: str | None = None,
        synthetic_size: int = 0,
        train_size: int | None = None,
        train_stream: int = 0,
        stream_seed: int = 0,
    ) -> None:
        super().__init__()
        check_label_pattern(label_pattern)
        labels = read_labels_csv(labels_csv) if labels_csv else None
        if charset == "auto":
            charset = charset_of_labels(data_dir, label_pattern, labels)
        # The charset is stored resolved (never "auto"), as the model stores it.
        # The policy's modules stay out of checkpoints (each run's config.yaml records them).
        self.save_hyperparameters(ignore=["charset", "augmentations"])
        self.hparams.charset = charset
        self.labels = labels
        self.tokenizer = Tokenizer(charset, min_length, max_length)
        self.height = height
        self.width = width
        self.crop_to_text = crop_to_text
        self.normalize = normalize
        self.augmentation = nn.Sequential(*augmentations) if augmentations else None
        self.dataset: CaptchaDataset | None = None
        self.split: Split | None = None
        self.predict_dataset: CaptchaDataset | None = None

    @property
    def charset(self) -> str:
        return self.tokenizer.charset

    @property
    def min_length(self) -> int:
        return self.tokenizer.min_length

    @property
    def max_length(self) -> int:
        return self.tokenizer.max_length

    def prepare_data(self) -> None:
        """Fill a missing ``data_dir``: draw synthetic captchas (``synthetic_size``) or download
        and unpack the archive, then check the number of images that arrived."""
        target = Path(self.hparams.data_dir)
        predicting_elsewhere = self.hparams.predict_dir and self.trainer is not None and self.trainer.predicting
        if target.exists() or predicting_elsewhere:
            return
        if self.hparams.synthetic_size:
            tokenizer = self.tokenizer
            synthesize(target, self.hparams.synthetic_size, tokenizer.charset, tokenizer.min_length,
                       tokenizer.max_length, seed=self.hparams.split_seed)  # fmt: skip
            return
        if not (self.hparams.download or Path(self.hparams.data_dir) == Path(DEFAULT_DATA_DIR)):
            raise FileNotFoundError(
                f"data folder {str(target)!r} does not exist: pass the folder of your images as --data.data_dir, "
                f"or add --data.download true to fetch captcha_images_v2 into it"
            )
        download_folder(self.hparams.download_url, target, self.hparams.expected_files)

    def setup(self, stage: str) -> None:
        hp = self.hparams
        if stage == "predict" and hp.predict_dir:
            files = list_files(hp.predict_dir)
            self.predict_dataset = CaptchaDataset(
                files,
                self.tokenizer,
                hp.height,
                hp.width,
                skip_bad_files=hp.skip_bad_files,
                labelled=False,
                crop_to_text=hp.crop_to_text,
                normalize=hp.normalize,
            )
            return
        if self.dataset is not None:
            return
        files = list_files(hp.data_dir)
        if hp.labels_csv:
            files = [f for f in files if f.resolve() != Path(hp.labels_csv).resolve()]
        self.dataset = CaptchaDataset(
            files,
            self.tokenizer,
            hp.height,
            hp.width,
            hp.label_pattern,
            hp.skip_bad_files,
            labels=self.labels,
            crop_to_text=hp.crop_to_text,
            normalize=hp.normalize,
        )
        split = fold_split(len(self.dataset), hp.fold, hp.num_folds, hp.val_fraction, hp.split_seed)
        self.split = replace(split, train=subsample(split.train, hp.train_size, hp.split_seed))
        if hp.val_fraction and not self.split.val:  # validation asked for, none: only Lightning's warnings
            raise ValueError(
                f"no validation images: val_fraction {hp.val_fraction} of the {len(self.split.train)} training "
                f"images of fold {hp.fold} is none; raise --data.val_fraction or add images"
            )

    def loader(self, part: str, shuffle: bool = False, distributed: bool = False) -> DataLoader:
        """Batches of ``part`` ("train", "val" or "test"), in the order of ``files(part)`` unless
        shuffled; with ``distributed``, this process's share when the trainer runs several.
        (Training batches are augmented after transfer, by the trainer's fit only.)"""
        if self.dataset is None:
            raise RuntimeError("call setup() first")
        subset = Subset(self.dataset, getattr(self.split, part))
        sampler = None
        if distributed and self.trainer is not None and self.trainer.world_size > 1:
            # Lightning's default DistributedSampler pads with repeated images to even out the
            # processes, and a repeated image would count twice in val / test metrics.
            sampler = UnrepeatedDistributedSampler(subset, self.trainer.world_size, self.trainer.global_rank, False)
        return DataLoader(
            subset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        if not hp.train_stream:
            return self.loader("train", shuffle=True)
        stream = GeneratedBatches(
            self.tokenizer, hp.batch_size, hp.height, hp.width, hp.crop_to_text, hp.stream_seed, hp.normalize
        )
        epoch = EpochBatches(math.ceil(hp.train_stream / hp.batch_size))
        return DataLoader(stream, batch_size=None, sampler=epoch, num_workers=hp.num_workers,
                          persistent_workers=hp.num_workers > 0)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", distributed=True)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", distributed=True)

    def predict_dataloader(self) -> DataLoader:
        if self.predict_dataset is None:
            return self.test_dataloader()
        return DataLoader(
            self.predict_dataset, batch_size=self.hparams.batch_size, num_workers=self.hparams.num_workers
        )

    @property
    def predict_files(self) -> list[Path]:
        """The files ``predict`` reads, in loader order."""
        return self.predict_dataset.files if self.predict_dataset is not None else self.files("test")

    def files(self, part: str) -> list[Path]:
        """The files of ``part`` ("train", "val" or "test"), in loader order when not shuffled."""
        return [self.dataset.files[i] for i in getattr(self.split, part)]

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor] | Tensor, dataloader_idx: int):
        if self.augmentation is None or self.trainer is None or not self.trainer.training:
            return batch
        images, targets = batch
        return self.augmentation(images), targets
