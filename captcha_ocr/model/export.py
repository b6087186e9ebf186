"""ONNX export of a trained network, with its ``ModelSpec`` and its preparation graph in the
file's metadata."""

import base64
import json
import warnings
from pathlib import Path

import torch

from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.model.preparation_graph import preparation_model
from captcha_ocr.reading.images import TEXT_MARGIN
from captcha_ocr.reading.spec import HEADS, ModelSpec
from captcha_ocr.reading.weights import DEFAULT_WEIGHTS, ONNX_PREPARATION_KEY, ONNX_SPEC_KEY


def describe(spec: ModelSpec) -> tuple[str, str, str]:
    """What the file says of itself to a reader in any language: the model, its input (how an
    image is prepared) and its output (how it is read), for the ONNX doc strings."""
    lengths = str(spec.min_length) if spec.min_length == spec.max_length else f"{spec.min_length}-{spec.max_length}"
    model = (
        f"captcha_ocr reader of captchas of {lengths} characters from the charset {spec.charset!r}. "
        f"The ModelSpec (charset, lengths, input size, preparation, head) is the JSON metadata entry {ONNX_SPEC_KEY!r}."
    )
    steps = ["the file's pixels in 8-bit grey (transparency laid over white)"]
    if spec.normalize:
        steps.append("made dark text on an even white page (captcha_ocr.reading.images.normalize_page)")
    if spec.crop_to_text:
        steps.append(f"cropped to the text with a margin of {TEXT_MARGIN} of its height (images.crop_text)")
    steps.append(f"resized bilinearly to {spec.width} x {spec.height}, divided by 255")
    images = (
        f"float32 (batch, 1, {spec.height}, {spec.width}) in [0, 1]: " + ", ".join(steps) + " "
        "(captcha_ocr.reading.images.load_image does all of it). The metadata entry "
        f"{ONNX_PREPARATION_KEY!r} is an ONNX model, base64-encoded, that does it from the pixels: input "
        "'pixels', uint8 (batch, height, width), 8-bit grey images of one size (Pillow's grey: "
        "(19595 R + 38470 G + 7471 B + 32768) >> 16, transparency laid over white first); output "
        "'images', this input."
    )
    reading = HEADS[spec.head].in_words.format(L=spec.max_length, T=spec.feature_map_size()[1])
    logits = (
        f"float32 (batch, {spec.output_steps()}, {len(spec.charset) + 1}): scores per step of class 0 (no character) "
        f"and of each charset character in order (softmax over the last axis: probabilities). The {spec.head} "
        f"head: {reading} (captcha_ocr.reading.decoding)."
    )
    return model, images, logits


def export_onnx(output: str | Path, checkpoint: str | Path = DEFAULT_WEIGHTS) -> Path:
    """Export a checkpoint to ONNX with a dynamic batch dimension.

    The graph maps ``images`` (B, 1, H, W) float in [0, 1] to ``logits``; the text table and input
    size travel in the metadata, and so does the graph that prepares ``images`` from an image's
    grey pixels (``preparation_graph``), so that the ONNX file alone is enough to read captchas
    in any language that runs ONNX; the doc strings of the model, its input and its output say
    in words what they are (``describe``).
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
    preparation = preparation_model(spec.height, spec.width, spec.normalize, spec.crop_to_text)
    for key, value in (
        (ONNX_SPEC_KEY, json.dumps(spec.to_dict())),
        (ONNX_PREPARATION_KEY, base64.b64encode(preparation.SerializeToString()).decode("ascii")),
    ):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    graph.doc_string, graph.graph.input[0].doc_string, graph.graph.output[0].doc_string = describe(spec)
    onnx.save(graph, output)
    return output
