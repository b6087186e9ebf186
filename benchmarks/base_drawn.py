"""How well a pretrained model reads captchas of its own pretraining styles that it never saw:
``N`` images drawn as ``make base`` draws them but from another seed (``--seed 1``: seeds of
the pretraining set are ``"0:<chunk>"``), read by each ``--model`` with no constraint beyond its
charset and lengths. ``--kind random --lengths 4-8`` draws texts an older base (0.3: 0-9 a-z
A-Z, 4-8 characters) can write too. One row per model is appended to ``--out``.

    python benchmarks/base_drawn.py --model base runs/base/model.onnx --count 1000
    python benchmarks/base_drawn.py --model base runs/base/model.onnx --count 1000 --kind random --lengths 4-8
"""

import argparse
import math
import string
import time
from pathlib import Path

from captcha_ocr.analysis.errors import summary
from captcha_ocr.analysis.results import ImageResult, append_rows
from captcha_ocr.data.synth import draw_captchas, parse_lengths
from captcha_ocr.reading.reader import CaptchaReader

ROOT = Path(__file__).resolve().parents[1]
CHARSET = string.digits + string.ascii_letters  # the Makefile's BASE_CHARSET
COLUMNS = ["model", "kind", "lengths", "images", "seed", "cer", "whole_acc", "seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=["base"], help="shipped names or .onnx files")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kind", choices=("both", "random"), default="both", help="as synth --kind")
    parser.add_argument("--lengths", default="3-10", help="as synth --length")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "base_drawn.csv")
    args = parser.parse_args()
    shortest, longest = parse_lengths(args.lengths)
    drawn = list(draw_captchas(args.count, CHARSET, shortest, longest, args.seed, kind=args.kind, style="mixed"))
    labels, images = zip(*drawn, strict=True)
    for model in args.model:
        start = time.perf_counter()
        readings = CaptchaReader(model, backend="onnx").read(list(images))
        results = [ImageResult(f"{i}.png", label, r.text, math.nan, math.nan)
                   for i, (label, r) in enumerate(zip(labels, readings, strict=True))]  # fmt: skip
        headline = summary(results)
        row = {"model": model, "kind": args.kind, "lengths": args.lengths, "images": args.count, "seed": args.seed,
               "cer": round(headline["cer"], 5), "whole_acc": round(headline["whole_acc"], 5),
               "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        append_rows(args.out, COLUMNS, [row])
        print(row, flush=True)


if __name__ == "__main__":
    main()
