"""Inference speed and accuracy of the shipped model on the fold-0 test images.

    python benchmarks/inference.py --data-dir ../shared/data/captcha_images_v2 [--model crnn fast] \
        [--backend torch onnx ddddocr]

Each backend (and, for ONNX, each preparation: the model file's graph or Python) is measured in a
process of its own (so that one's threads and caches do not slow the next), at batch 1 and
batch 64, from three inputs: a PNG file (through ``CaptchaReader.read``, which decodes images on
its threads while the model reads), a decoded image array, and a prepared array (the network
alone). ddddocr, when installed, reads one image at a time with its output restricted to the
data set's alphabet. Prints a Markdown table, with each PNG row's speed as a multiple of
ddddocr's in the same run.
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_CHARSET = "2345678bcdefgmnpwxy"


def timed(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats


def accuracy(texts: list[str], files: list[Path]) -> dict:
    from captcha_ocr.analysis.errors import text_summary
    from captcha_ocr.data.dataset import label_from_name

    headline = text_summary(texts, [label_from_name(f) for f in files])
    return {"whole_acc": headline["whole_acc"], "cer": headline["cer"]}


INPUTS = {  # what a pass starts from
    "prepared": "a prepared array (the network alone)",
    "pixels": "a decoded image array (preparation and network)",
    "PNG": "a PNG file (decoding, preparation and network)",
}


def measure_model(model: str, backend: str, preparation: str, files: list[Path], threads: int) -> list[dict]:
    import numpy as np

    from captcha_ocr.reading.images import read_grey
    from captcha_ocr.reading.reader import CaptchaReader

    in_graph = preparation == "graph"
    reader = CaptchaReader(model, backend=backend, batch_size=64, num_threads=threads, prepare_in_graph=in_graph)
    if in_graph and not reader.prepares_in_graph:
        raise SystemExit(f"{model} has no preparation graph (re-export it with captcha-ocr export)")
    arrays = np.stack([reader.preprocess(f) for f in files])  # (N, 1, H, W)
    pixels = [np.asarray(read_grey(f)) for f in files]  # (H, W) uint8 each
    texts = [r.text for r in reader.read_arrays(arrays)]
    quality = accuracy(texts, files)
    rows = []
    for batch in (1, 64):
        chunks = [slice(i, i + batch) for i in range(0, len(files), batch)]
        passes = {
            "prepared": lambda chunks=chunks: [reader.read_arrays(arrays[c]) for c in chunks],
            "pixels": lambda chunks=chunks: [reader.read(pixels[c]) for c in chunks],
            # the user's path: CaptchaReader.read, which decodes images on its threads ahead of the model
            "PNG": lambda chunks=chunks: [reader.read(files[c]) for c in chunks],
        }
        for start, run in passes.items():
            seconds = timed(run, repeats=3)
            speed = {"images_per_s": len(files) / seconds, "ms_per_image": 1000 * seconds / len(files)}
            rows.append({"model": model, "backend": backend, "preparation": preparation, "batch": batch,
                         "input": start, **speed, **quality})  # fmt: skip
    return rows


def measure_ddddocr(files: list[Path], charset: str) -> list[dict]:
    import ddddocr

    ocr = ddddocr.DdddOcr(show_ad=False)
    ocr.set_ranges(charset)
    contents = [f.read_bytes() for f in files]

    def read_all() -> list[str]:
        return [ocr.classification(c, probability=False) for c in contents]

    texts = read_all()
    seconds = timed(read_all, repeats=1)
    speed = {"images_per_s": len(files) / seconds, "ms_per_image": 1000 * seconds / len(files)}
    quality = accuracy(texts, files)
    name = f"ddddocr {importlib.metadata.version('ddddocr')}"
    row = {"model": name, "backend": "ddddocr", "preparation": "ddddocr", "batch": 1, "input": "PNG"}
    return [{**row, **speed, **quality}]


def child(args: argparse.Namespace) -> None:
    from captcha_ocr.data.split import fold_test_files
    from captcha_ocr.reading.listing import image_files

    files = fold_test_files(image_files(args.data_dir))
    backend, model, preparation = args.backend[0], args.model[0], args.preparation[0]  # a child measures one of each
    if backend == "ddddocr":
        rows = measure_ddddocr(files, args.charset)
    else:
        rows = measure_model(model, backend, preparation, files, args.threads)
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", type=Path, required=True)
    parser.add_argument("--model", nargs="+", default=["crnn", "fast"], help="shipped models or model files")
    parser.add_argument("--backend", nargs="+", default=["torch", "onnx", "ddddocr"])
    parser.add_argument(
        "--preparation", nargs="+", default=["graph", "python"], choices=["graph", "python"],
        help="for the onnx backend: prepare in the model file's graph, in Python, or both (torch: Python)",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--charset", default=DEFAULT_CHARSET)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"{args.threads} threads, Python {platform.python_version()}")  # fmt: skip
    runs = [(m, b, p) for m in args.model for b in args.backend if b == "onnx" for p in args.preparation]
    runs += [(m, b, "python") for m in args.model for b in args.backend if b == "torch"]
    runs += [("ddddocr", "ddddocr", "python")] if "ddddocr" in args.backend else []  # its own preparation
    rows, failures = [], []
    for model, backend, preparation in runs:
        command = [sys.executable, __file__, "--child", "--data_dir", str(args.data_dir), "--backend", backend,
                   "--model", model, "--preparation", preparation, "--threads", str(args.threads),
                   "--charset", args.charset]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            reason = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
            failures.append(f"{model} {backend} {preparation}: {reason}")
            continue
        rows += json.loads(result.stdout.strip().splitlines()[-1])
    peer = next((row["images_per_s"] for row in rows if row["backend"] == "ddddocr"), None)
    print("inputs: " + "; ".join(f"{name}: {words}" for name, words in INPUTS.items()))
    print(
        "| model | backend | preparation | batch | input | images/s | ms/image | x ddddocr | whole-captcha acc. | CER |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row['images_per_s'] / peer:.1f}x" if peer and row["input"] == "PNG" else ""
        print(f"| {row['model']} | {row['backend']} | {row['preparation']} | {row['batch']} | {row['input']} | "
              f"{row['images_per_s']:.0f} | {row['ms_per_image']:.2f} | {ratio} | {100 * row['whole_acc']:.2f} % | "
              f"{100 * row['cer']:.3f} % |")  # fmt: skip
    for failure in failures:
        print(f"failed: {failure}")


if __name__ == "__main__":
    main()
