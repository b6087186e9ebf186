"""Where the time of preparing an image goes: each stage of ``images.load_image`` timed apart.

    python benchmarks/preparation.py               # the first 300 files of the data set, best of 5 passes
    python benchmarks/preparation.py --files 1040 --repeats 3
    python benchmarks/preparation.py --graph         # the preparation graph against Python (onnx needed)

Each stage runs on the output of the one before, on one thread, the files read into memory
first (no disk in the figures): PNG decoding, grey-scale conversion, page normalisation, the
text finder (with the two Otsu masks and the straight-line search inside it, also timed alone),
the crop, and the resize to the model's 32 x 128 input. Printed: microseconds per image per
stage (the best of the passes) and its share of the whole; the Python calls per image come from
one profiled pass. The stages are many small numpy and Pillow calls, each holding the GIL.

``--graph`` times the same preparation as an ONNX graph (``model.preparation_graph``, the one
in every exported model file), whole and by part, at batch 1 and 64, against ``prepare_grey``.
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
from captcha_ocr.reading.images import (
    crop_text,
    find_text,
    ink_mask,
    load_image,
    normalize_page,
    prepare_grey,
    rules,
    to_grey,
)
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


def graph_timing(grey_images: list[Image.Image], repeats: int) -> None:
    """Print the preparation graph's time per image against ``prepare_grey``'s, whole and by
    part, at batch 1 and 64 with one and two onnxruntime threads (the graphs of other
    preparations stand for the parts: a resize alone; page normalisation with an identity
    resize; the text finder, crop and resize without normalisation)."""
    import numpy as np
    import onnxruntime as ort

    from captcha_ocr.model.preparation_graph import preparation_model

    height, width = grey_images[0].height, grey_images[0].width
    pixels = np.stack([np.asarray(grey) for grey in grey_images if grey.size == (width, height)])  # one size
    python, _ = best_pass(lambda grey: prepare_grey(grey, 32, 128, True, True), grey_images, repeats)
    print(f"{len(pixels)} images of {width} x {height}, best of {repeats} passes\n")
    print(f"Python (prepare_grey), one thread: {python:.0f} µs per image\n")
    print("| graph | threads | batch | µs per image |\n|---|---|---|---|")
    parts = {
        "whole (32 x 128, normalised, cropped)": preparation_model(32, 128, True, True),
        "resize to 32 x 128 only": preparation_model(32, 128, False, False),
        "page normalisation, identity resize": preparation_model(height, width, True, False),
        "identity resize only": preparation_model(height, width, False, False),
        "text finder, crop and resize": preparation_model(32, 128, False, True),
    }
    for name, model in parts.items():
        for threads, batch in ((1, 1), (1, 64), (2, 64)):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            batches = [pixels[i : i + batch] for i in range(0, len(pixels), batch)]
            micros, _ = best_pass(lambda chunk, s=session: s.run(["images"], {"pixels": chunk}), batches, repeats)
            print(f"| {name} | {threads} | {batch} | {micros * len(batches) / len(pixels):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=find_data_dir(Path(__file__).resolve().parents[1]))
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--graph", action="store_true", help="only time the preparation graph against Python")
    args = parser.parse_args()
    data = [path.read_bytes() for path in image_files(args.data_dir)[: args.files]]
    if args.graph:
        graph_timing([to_grey(decoded(d)) for d in data], args.repeats)
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
