"""Does dynamic int8 quantisation (onnxruntime) make a shipped model faster, and does it read the
same? The model's ONNX graph, as exported and quantised, read on fold 0's 208 test images (which
no shipped model saw) from prepared arrays at batch 64 and batch 1, in one process, one after the
other.

    python benchmarks/quantize.py --model crnn [--data-dir ../shared/data/captcha_images_v2]

Prints one Markdown row per variant: images/s, ms per image at batch 1, whole-captcha accuracy,
and how many readings differ from the float model's.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.data.split import fold_test_files
from captcha_ocr.reading.listing import image_files
from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.reading.weights import model_file


def speed(reader: CaptchaReader, arrays: np.ndarray, batch: int, repeats: int = 5) -> float:
    """Images per second reading ``arrays`` in batches of ``batch`` (after one warm-up pass)."""
    chunks = [arrays[i : i + batch] for i in range(0, len(arrays), batch)]
    [reader.read_arrays(c) for c in chunks]
    start = time.perf_counter()
    for _ in range(repeats):
        [reader.read_arrays(c) for c in chunks]
    return repeats * len(arrays) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="crnn", help="a shipped model name or an .onnx file")
    default_data = find_data_dir(Path(__file__).resolve().parents[1])
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", type=Path, default=default_data)
    args = parser.parse_args()
    source = model_file(args.model, "onnx")
    files = fold_test_files(image_files(args.data_dir))
    labels = [f.stem for f in files]
    with tempfile.TemporaryDirectory() as folder:
        quantised = Path(folder) / "int8.onnx"
        quantize_dynamic(source, quantised, weight_type=QuantType.QInt8)
        readers = {"float32 (as exported)": CaptchaReader(source, backend="onnx"),
                   "dynamic int8": CaptchaReader(quantised, backend="onnx")}  # fmt: skip
        arrays = np.stack([readers["float32 (as exported)"].preprocess(f) for f in files])
        reference = [r.text for r in readers["float32 (as exported)"].read_arrays(arrays)]
        print(
            f"{args.model}: {source.stat().st_size / 1e6:.2f} MB float32, {quantised.stat().st_size / 1e6:.2f} MB int8"
        )
        print("| variant | images/s, batch 64 | ms/image, batch 1 | whole-captcha acc. | readings unlike float32 |")
        print("|---|---|---|---|---|")
        for name, reader in readers.items():
            texts = [r.text for r in reader.read_arrays(arrays)]
            accuracy = np.mean([t == g for t, g in zip(texts, labels, strict=True)])
            changed = sum(t != r for t, r in zip(texts, reference, strict=True))
            print(f"| {name} | {speed(reader, arrays, 64):.0f} | {1000 / speed(reader, arrays[:64], 1):.2f} | "
                  f"{100 * accuracy:.2f} % | {changed} |")  # fmt: skip


if __name__ == "__main__":
    main()
