"""Model weights on disk: Lightning checkpoints and the slim weights file the package ships,
each with the ``ModelSpec`` that rebuilds its network."""

from pathlib import Path

import torch

from captcha_ocr.model import CaptchaNet, ModelSpec
from captcha_ocr.weights import DEFAULT_WEIGHTS


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


def stored_data_hparams(path: str | Path) -> dict:
    """The data module's arguments stored in a Lightning checkpoint (split, labels, input); empty
    for a slim weights file, which keeps the model's spec alone."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a captcha_ocr checkpoint of this version ({error})") from None
    return dict(checkpoint.get("datamodule_hyper_parameters", {}))


def save_model(model: CaptchaNet, spec: ModelSpec, target: str | Path) -> None:
    """Write a network's weights and ``ModelSpec`` alone (a few MB), loadable by ``load_model``."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"hyper_parameters": spec.to_dict(), "state_dict": state}, target)


def save_weights(checkpoint: str | Path, target: str | Path) -> None:
    """Slim a Lightning checkpoint down to what inference needs: no optimiser state."""
    save_model(*load_model(checkpoint), target)
