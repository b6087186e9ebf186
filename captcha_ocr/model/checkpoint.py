"""Model weights on disk: Lightning checkpoints and the slim weights file the package ships,
each with the ``ModelSpec`` that rebuilds its network."""

import pickle
from pathlib import Path

import torch

from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.reading.spec import ModelSpec
from captcha_ocr.reading.weights import DEFAULT_WEIGHTS


def read_checkpoint(path: str | Path) -> dict:
    """The contents of a checkpoint or weights file, loaded weights-only: tensors and plain
    containers, never code (a model file is user input).

    Raises:
        FileNotFoundError: No regular file at ``path``.
        ValueError: The file is truncated, not a torch file, or holds other Python objects
            (they are refused, since loading them could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # torch's weights-only unpickler refused it
        reason = (
            "not a torch file, or one holding Python objects besides tensors (refused: loading those could run code)"
        )
        raise ValueError(f"{path} cannot be loaded safely: {reason}") from error
    except Exception as error:  # torch raises RuntimeError and others for truncated or foreign files
        reason = str(error).strip().split(". ")[0] or type(error).__name__
        raise ValueError(f"{path} is not a readable torch file ({reason})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise ValueError(f"{path} is not a captcha_ocr checkpoint (no state_dict and hyper_parameters)")
    return checkpoint


def check_lightning_checkpoint(path: str | Path) -> None:
    """Raise ``ValueError`` unless ``path`` is a Lightning checkpoint of a ``CaptchaSystem`` (what
    ``main.py test --ckpt_path`` resumes from), naming what it is instead."""
    checkpoint = read_checkpoint(path)
    if "pytorch-lightning_version" not in checkpoint:
        raise ValueError(
            f"{path} is a slim weights file (captcha-ocr read, export and report take it); main.py needs a "
            f"Lightning checkpoint such as lightning_logs/<name>/version_<n>/checkpoints/best-*.ckpt"
        )


def load_model(path: str | Path = DEFAULT_WEIGHTS) -> tuple[CaptchaNet, ModelSpec]:
    """Load a network in eval mode from a Lightning checkpoint or a slim weights file.

    Raises:
        FileNotFoundError: No file at ``path``.
        ValueError: The file is not a captcha_ocr checkpoint (or one that would run code when
            loaded), or its weights do not fit its spec.
    """
    checkpoint = read_checkpoint(path)
    try:
        spec = ModelSpec.from_dict(checkpoint["hyper_parameters"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a captcha_ocr checkpoint of this version (its spec: {error})") from error
    state = checkpoint["state_dict"]
    model = CaptchaNet(spec)
    prefix = "model."
    try:
        model.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)})
    except RuntimeError as error:
        raise ValueError(f"{path}: the weights do not match the architecture of its spec ({error})") from error
    return model.eval(), spec


def stored_data_hparams(path: str | Path) -> dict:
    """The data module's arguments stored in a Lightning checkpoint (split, labels, input); empty
    for a slim weights file, which keeps the model's spec alone."""
    return dict(read_checkpoint(path).get("datamodule_hyper_parameters", {}))


def save_model(model: CaptchaNet, spec: ModelSpec, target: str | Path) -> None:
    """Write a network's weights and ``ModelSpec`` alone (a few MB), loadable by ``load_model``."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"hyper_parameters": spec.to_dict(), "state_dict": state}, target)


def save_weights(checkpoint: str | Path, target: str | Path) -> None:
    """Slim a Lightning checkpoint down to what inference needs: no optimiser state."""
    save_model(*load_model(checkpoint), target)
