"""Start a network from another one's weights (fine-tuning), whatever their charsets and lengths.

Every tensor of the same name and shape is copied: the stem, the residual stages, the LSTM. The
head's tensors have an axis over classes (the padding / blank class, then the charset) and the
position head's an axis over positions too: with ``head="map"`` the rows of the classes both
charsets have, and of the positions both lengths have, are copied and the rest keep their fresh
initialisation; with ``head="reinit"`` the head starts from scratch.
"""

from typing import Literal

import torch

from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.reading.spec import ModelSpec

HeadInit = Literal["map", "reinit"]
ARCHITECTURE = ("channels", "stem_stride", "strides", "blocks_per_stage", "lstm_hidden", "lstm_layers",
                "flatten_height", "head", "height", "width")  # fmt: skip


def head_axes(name: str, shape: torch.Size) -> tuple[str, ...]:
    """What each axis of a head tensor runs over: "class", "position" or "" (features)."""
    if name.endswith("queries"):
        return ("position", "")  # (L, dim)
    if ".keys." in name:
        return ("",) * len(shape)
    if len(shape) == 3:
        return ("position", "", "class")  # position head weight (L, dim, C)
    if len(shape) == 2:
        return ("position", "class") if name.endswith("bias") else ("class", "")  # position bias / CTC weight
    return ("class",)  # CTC bias (C,)


def class_rows(source: ModelSpec, target: ModelSpec) -> tuple[list[int], list[int]]:
    """Matching class ids of two charsets: the padding / blank class and the shared characters."""
    source_ids = {c: i + 1 for i, c in enumerate(source.charset)}
    shared = [(source_ids[c], i + 1) for i, c in enumerate(target.charset) if c in source_ids]
    return [0, *(s for s, _ in shared)], [0, *(t for _, t in shared)]


def transfer_weights(
    source: CaptchaNet, source_spec: ModelSpec, target: CaptchaNet, target_spec: ModelSpec, head: HeadInit = "map"
) -> list[str]:
    """Copy ``source``'s weights into ``target`` (see the module); returns the names copied whole
    or in part.

    Raises:
        ValueError: The two networks differ in architecture or input, naming what differs.
    """
    different = [f"{k}: {getattr(source_spec, k)!r} vs {getattr(target_spec, k)!r}" for k in ARCHITECTURE
                 if getattr(source_spec, k) != getattr(target_spec, k)]  # fmt: skip
    if different:
        raise ValueError("the base model's architecture differs from the recipe's: " + "; ".join(different))
    source_rows, target_rows = class_rows(source_spec, target_spec)
    weights = source.state_dict()
    copied = []
    with torch.no_grad():
        for name, tensor in target.state_dict().items():  # views of the parameters: copy_ sets them
            is_head = name.startswith("head.")
            if name not in weights or (is_head and head == "reinit"):
                continue
            if not is_head or (weights[name].shape == tensor.shape and source_spec.charset == target_spec.charset):
                tensor.copy_(weights[name])
            else:
                rows = []  # per axis: (source indices, target indices)
                for axis, kind in enumerate(head_axes(name, tensor.shape)):
                    common = list(range(min(weights[name].shape[axis], tensor.shape[axis])))
                    rows.append((source_rows, target_rows) if kind == "class" else (common, common))
                into = torch.meshgrid(*(torch.tensor(t) for _, t in rows), indexing="ij")
                tensor[into] = weights[name][torch.meshgrid(*(torch.tensor(s) for s, _ in rows), indexing="ij")]
            copied.append(name)
    return copied
