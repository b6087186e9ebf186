"""Model weights on disk: Lightning checkpoints, the slim weights file the package ships, and
what is needed to rebuild the network from either."""

from dataclasses import asdict, dataclass, fields
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
    head: str
    channels: tuple[int, ...]
    strides: tuple[tuple[int, int], ...]
    blocks_per_stage: int
    lstm_hidden: int
    lstm_layers: int

    @classmethod
    def from_hparams(cls, hparams: dict) -> "ModelSpec":
        values = {f.name: hparams[f.name] for f in fields(cls)}
        values["channels"] = tuple(values["channels"])
        values["strides"] = tuple(tuple(s) for s in values["strides"])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.charset, self.min_length, self.max_length)

    def build(self) -> CaptchaNet:
        return CaptchaNet(
            self.tokenizer().num_classes,
            self.max_length,
            self.head,
            self.channels,
            self.strides,
            self.blocks_per_stage,
            self.lstm_hidden,
            self.lstm_layers,
            dropout=0.0,
        )


def load_model(path: str | Path = DEFAULT_WEIGHTS) -> tuple[CaptchaNet, ModelSpec]:
    """Load a network in eval mode from a Lightning checkpoint or a slim weights file.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is not a captcha_ocr checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        # Lightning checkpoints hold the optimiser's class in their hyper-parameters.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        spec = ModelSpec.from_hparams(checkpoint["hyper_parameters"])
        state = checkpoint["state_dict"]
    except Exception as error:
        raise ValueError(f"{path} is not a captcha_ocr checkpoint: {error!r}") from None
    model = spec.build()
    prefix = "model."
    model.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
    return model.eval(), spec


def save_model(model: CaptchaNet, spec: ModelSpec, target: str | Path) -> None:
    """Write a network's weights and ``ModelSpec`` alone (a few MB), loadable by ``load_model``."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"hyper_parameters": spec.to_dict(), "state_dict": state}, target)


def save_weights(checkpoint: str | Path, target: str | Path) -> None:
    """Slim a Lightning checkpoint down to what inference needs: no optimiser state."""
    save_model(*load_model(checkpoint), target)
