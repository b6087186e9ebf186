"""ONNX export of a trained network, with its ``ModelSpec`` in the file's metadata."""

import json
import warnings
from pathlib import Path

import torch

from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.reading.weights import DEFAULT_WEIGHTS, ONNX_SPEC_KEY


def export_onnx(output: str | Path, checkpoint: str | Path = DEFAULT_WEIGHTS) -> Path:
    """Export a checkpoint to ONNX with a dynamic batch dimension.

    The graph maps ``images`` (B, 1, H, W) float in [0, 1] to ``logits``; the text table and input
    size travel in the metadata, so that the ONNX file alone is enough to read captchas.
    """
    import onnx  # optional dependency: the `onnx` extra

    model, spec = load_model(checkpoint)
    example = torch.rand(2, 1, spec.height, spec.width)
    batch = torch.export.Dim("batch", min=1, max=65536)
    output = Path(output)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            output,
            input_names=["images"],
            output_names=["logits"],
            dynamic_shapes={"images": {0: batch}},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    graph = onnx.load(output)
    entry = graph.metadata_props.add()
    entry.key, entry.value = ONNX_SPEC_KEY, json.dumps(spec.to_dict())
    onnx.save(graph, output)
    return output
