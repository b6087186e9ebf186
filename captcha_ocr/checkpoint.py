"""Model weights on disk: Lightning checkpoints, the slim weights file the package ships, and
what is needed to rebuild the network from either."""

from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import torch

from captcha_ocr.model import CaptchaNet
from captcha_ocr.tokenizer import Tokenizer
from captcha_ocr.weights import DEFAULT_WEIGHTS


@dataclass(frozen=True)
class ModelSpec:
    """Everything besides the weights that inference needs: the text table, the input size and
    the architecture."""

    charset: str
    min_length: int
    max_length: int
    height: int
    width: int
    crop_to_text: bool
    head: str
    channels: tuple[int, ...]
    strides: tuple[tuple[int, int], ...]
    blocks_per_stage: int
    lstm_hidden: int
    lstm_layers: int
    flatten_height: bool = False

    @classmethod
    def from_hparams(cls, hparams: dict) -> "ModelSpec":
        values = {f.name: hparams[f.name] for f in fields(cls) if f.name in hparams or f.default is MISSING}
        values["channels"] = tuple(values["channels"])
        values["strides"] = tuple(tuple(s) for s in values["strides"])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.charset, self.min_length, self.max_length)

    def build(self, dropout: float = 0.0) -> CaptchaNet:
        """The network this spec describes (untrained); the one builder for training and loading."""
        return CaptchaNet(
            num_classes=self.tokenizer().num_classes,
            max_length=self.max_length,
            head=self.head,
            channels=self.channels,
            strides=self.strides,
            blocks_per_stage=self.blocks_per_stage,
            lstm_hidden=self.lstm_hidden,
            lstm_layers=self.lstm_layers,
            flatten_height=self.flatten_height,
            input_height=self.height,
            dropout=dropout,
        )


def load_model(path: str | Path = DEFAULT_WEIGHTS) -> tuple[CaptchaNet, ModelSpec]:
    """Load a network in eval mode from a Lightning checkpoint or a slim weights file.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is not a captcha_ocr checkpoint (or one that would run code when
            loaded), or its weights do not fit its spec.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        # A model file is user input: weights-only loading unpickles tensors and plain
        # containers only, never code (a LightningCLI checkpoint stores its optimiser as a dict).
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        spec = ModelSpec.from_hparams(checkpoint["hyper_parameters"])
        state = checkpoint["state_dict"]
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a captcha_ocr checkpoint of this version ({reason})") from None
    model = spec.build()
    prefix = "model."
    try:
        model.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
    except RuntimeError as error:
        raise ValueError(f"{path}: the weights do not match the architecture of its spec ({error})") from None
    return model.eval(), spec


def save_model(model: CaptchaNet, spec: ModelSpec, target: str | Path) -> None:
    """Write a network's weights and ``ModelSpec`` alone (a few MB), loadable by ``load_model``."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"hyper_parameters": spec.to_dict(), "state_dict": state}, target)


def save_weights(checkpoint: str | Path, target: str | Path) -> None:
    """Slim a Lightning checkpoint down to what inference needs: no optimiser state."""
    save_model(*load_model(checkpoint), target)
