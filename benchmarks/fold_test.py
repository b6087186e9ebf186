"""Read one fold's test images of captcha_images_v2 with any model file: CER, whole captchas, misses.

    python benchmarks/fold_test.py --link 200 runs/labels200_images   # a user's folder of 200 labels
    captcha-ocr train runs/labels200_images --out runs/labels200
    python benchmarks/fold_test.py --model runs/labels200/model.onnx --fold 0

For a model trained on a folder of images drawn from a fold's training part (``train`` holds out
and tests on a fifth of that folder only), the fold's 208 test images are a second, larger test
that it never saw. Labels are the file names; the reader is the one users call.
"""

import argparse
import math
from pathlib import Path

from captcha_ocr.analysis.errors import summary
from captcha_ocr.analysis.results import ImageResult
from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.data.split import fold_split, subsample
from captcha_ocr.reading.listing import image_files
from captcha_ocr.reading.reader import CaptchaReader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--model", help="read the test images with this .onnx, .pt or .ckpt file or shipped model")
    task.add_argument("--link", nargs=2, metavar=("COUNT", "DIR"),
                      help="link COUNT images of the fold's training and validation parts, drawn by the split "
                      "seed, into the new folder DIR, to train on")  # fmt: skip
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--data-dir", "--data_dir", dest="data_dir", type=Path,
                        default=find_data_dir(Path(__file__).resolve().parents[1]))  # fmt: skip
    args = parser.parse_args()
    files = image_files(args.data_dir)
    split = fold_split(len(files), args.fold)
    if args.link:
        folder = Path(args.link[1])
        folder.mkdir(parents=True)
        for i in subsample(split.train + split.val, int(args.link[0]), 0):
            (folder / files[i].name).symlink_to(files[i].resolve())
        print(f"linked {args.link[0]} images of fold {args.fold}'s training part into {folder}")
        return
    test = [files[i] for i in split.test]
    backend = "onnx" if args.model.endswith(".onnx") else "torch"
    readings = CaptchaReader(args.model, backend=backend).read(test)
    results = [ImageResult(f.name, f.stem, r.text, math.nan, r.confidence) for f, r in zip(test, readings, strict=True)]
    headline = summary(results)
    print(f"fold {args.fold}, {len(test)} test images: CER {100 * headline['cer']:.3f} %, "
          f"whole captchas {100 * headline['whole_acc']:.2f} %")  # fmt: skip
    print("misses:", ", ".join(f"{r.label} -> {r.text}" for r in results if not r.correct) or "none")


if __name__ == "__main__":
    main()
