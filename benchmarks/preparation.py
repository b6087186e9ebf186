"""Where the time of preparing an image goes: each stage of ``images.load_image`` timed apart.

    python benchmarks/preparation.py               # the first 300 files of the data set, best of 5 passes
    python benchmarks/preparation.py --files 1040 --repeats 3
    python benchmarks/preparation.py --resize-check  # ONNX Runtime's Resize against Pillow's (onnx needed)

Each stage runs on the output of the one before, on one thread, the files read into memory
first (no disk in the figures): PNG decoding, grey-scale conversion, page normalisation, the
text finder (with the two Otsu masks and the straight-line search inside it, also timed alone),
the crop, and the resize to the model's 32 x 128 input. Printed: microseconds per image per
stage (the best of the passes) and its share of the whole; the Python calls per image come from
one profiled pass. The stages are many small numpy and Pillow calls, each holding the GIL.

``--resize-check`` measures one building block of a preparation inside the ONNX graph: how far
ONNX Runtime's ``Resize`` (linear, antialiased, half-pixel centres) lands from Pillow's bilinear
resize of the grey files, down to the input size and to other sizes (mean and largest difference
in grey levels after rounding).
"""

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.reading.images import crop_text, find_text, ink_mask, load_image, normalize_page, rules, to_grey
from captcha_ocr.reading.listing import image_files


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def best_pass(stage: Callable, inputs: list, repeats: int) -> tuple[float, list]:
    """Microseconds per input of the fastest of ``repeats`` passes, and the stage's outputs."""
    fastest, outputs = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = [stage(x) for x in inputs]
        fastest = min(fastest, time.perf_counter() - start)
    return 1e6 * fastest / len(inputs), outputs


def resize_check(grey_images: list[Image.Image]) -> None:
    """Print how far ONNX Runtime's antialiased linear Resize is from Pillow's BILINEAR."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear", antialias=1,
                            coordinate_transformation_mode="half_pixel")  # fmt: skip
    graph = helper.make_graph(
        [node],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, None, None]),
         helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    print("| size | mean difference | largest |\n|---|---|---|")
    for width, height in ((128, 32), (64, 16), (300, 77)):
        means, largest = [], 0.0
        for grey in grey_images:
            pillow = np.asarray(grey.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
            pixels = np.asarray(grey, dtype=np.float32)[None, None]  # (1, 1, H, W)
            sizes = np.array([1, 1, height, width], dtype=np.int64)
            onnx = session.run(None, {"x": pixels, "sizes": sizes})[0][0, 0].round().clip(0, 255)
            difference = np.abs(onnx - pillow)
            means.append(float(difference.mean()))
            largest = max(largest, float(difference.max()))
        print(f"| {width} x {height} | {sum(means) / len(means):.2f} | {largest:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=find_data_dir(Path(__file__).resolve().parents[1]))
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resize-check", action="store_true", help="only compare ONNX Runtime's Resize with Pillow's")
    args = parser.parse_args()
    data = [path.read_bytes() for path in image_files(args.data_dir)[: args.files]]
    if args.resize_check:
        resize_check([to_grey(decoded(d)) for d in data])
        return

    pipeline: list[tuple[str, Callable]] = [
        ("PNG decoding", decoded),
        ("grey-scale (to_grey)", to_grey),
        ("page normalisation (normalize_page)", normalize_page),
        ("text finder and crop (crop_text)", crop_text),
        ("resize to 32 x 128", lambda grey: grey.resize((128, 32), Image.Resampling.BILINEAR)),
    ]
    rows, inputs = [], data
    normalised: list = []
    for name, stage in pipeline:
        micros, outputs = best_pass(stage, inputs, args.repeats)
        rows.append((name, micros))
        if stage is normalize_page:
            normalised = outputs
        inputs = outputs
    inside = [
        ("  of which: ink masks (ink_mask)", ink_mask),
        ("  of which: straight lines (rules of the mask)", lambda grey: rules(ink_mask(grey))),
        ("  of which: the whole finder (find_text)", find_text),
    ]
    parts = [(name, best_pass(stage, normalised, args.repeats)[0]) for name, stage in inside]
    whole = sum(micros for _, micros in rows)
    end_to_end, _ = best_pass(lambda d: load_image(decoded(d), 32, 128, True, True), data, args.repeats)

    profile = cProfile.Profile()
    profile.enable()
    for d in data:
        load_image(decoded(d), 32, 128, True, True)
    profile.disable()
    calls = pstats.Stats(profile).total_calls / len(data)  # type: ignore[attr-defined]

    print(f"{len(data)} files, best of {args.repeats} passes, one thread\n")
    print("| stage | µs per image | share |\n|---|---|---|")
    for name, micros in rows:
        print(f"| {name} | {micros:.0f} | {100 * micros / whole:.0f} % |")
    for name, micros in parts:
        print(f"| {name} | {micros:.0f} | |")
    print(f"| all stages | {whole:.0f} | 100 % |")
    print(f"\nload_image end to end: {end_to_end:.0f} µs per image ({1e6 / end_to_end:.0f} images/s on one core);")
    print(f"{calls:.0f} Python function calls per image")


if __name__ == "__main__":
    main()
