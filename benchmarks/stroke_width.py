"""Can one number per image tell ink thinner or bolder than the data set's? A measure for a
stroke-width normalisation in the preparation, on the clean files and on the weight families.

    python benchmarks/stroke_width.py            # every file clean; every 10th through thin and bold
    python benchmarks/stroke_width.py --erode    # does thinning heavy ink help the CV models read bold?

The width of an image's strokes is estimated as twice the ink's area over the length of its edge
(a stroke of width w and length L has area wL and two edges of length L), on the prepared text
crop (page normalised, cropped to the text) 64 px high, the ink split off by Otsu's threshold.
Printed: the 5th, 50th and 95th percentiles per version. A normalisation needs the clean spread
and each family's spread apart.

``--erode`` tries the normalisation that the measure allows for bold ink: the prepared crop of an
image measured above ``HEAVY`` is thinned to ``TYPICAL`` (a grey-scale maximum over a square one
pixel wider than the excess, on the copy ``HEIGHT`` high) and resized to the model's input; every
other image is prepared as the reader prepares it. The cross-validation models of
folds 0-2, seed 0, read the validation parts of their folds clean and through ``bold`` with and
without it (whole-captcha %, mean ± std over the three).
"""

import argparse
import io
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from captcha_ocr.analysis.perturbations import DESIGN, STRENGTHS
from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.reading.images import _max_filter, crop_text, ink_mask, load_image, normalize_page, to_grey
from captcha_ocr.reading.listing import image_files

HEIGHT = 64  # the crop is measured at this height, whatever the file's size
TYPICAL, HEAVY = 4.8, 6.5  # px at that height: the clean median; above the clean files' 99th percentile


def working_crop(image: Image.Image) -> Image.Image:
    """The prepared text crop (page normalised, cropped to the text), ``HEIGHT`` pixels high."""
    crop = crop_text(normalize_page(to_grey(image)))
    return crop.resize((max(1, round(crop.width * HEIGHT / crop.height)), HEIGHT), Image.Resampling.BILINEAR)


def stroke_width(crop: Image.Image) -> float:
    """Twice the ink area over its edge length, in pixels of ``crop``."""
    ink = ink_mask(crop)  # (H, W)
    edges = (ink[:, 1:] != ink[:, :-1]).sum() + (ink[1:] != ink[:-1]).sum()
    return float(2 * ink.sum() / max(int(edges), 1))


def eroded_input(image: Image.Image, height: int, width: int) -> np.ndarray:
    """(1, height, width) uint8: the model's input as the reader prepares it, except that an image
    whose working crop is wider than ``HEAVY`` gets that crop thinned to ``TYPICAL``, resized."""
    crop = working_crop(image)
    measured = stroke_width(crop)
    if measured <= HEAVY:
        return load_image(image, height, width, crop_to_text=True, normalize=True)
    thinned = Image.fromarray(
        _max_filter(np.asarray(crop, dtype=np.int16), round(measured - TYPICAL) + 1).astype(np.uint8)
    )
    return np.asarray(thinned.resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)[None]


def read_eroded(args: argparse.Namespace) -> None:
    """Whole-captcha % of the CV models on their validation parts, bold ink eroded or not."""
    from captcha_ocr.data.dataset import label_from_name
    from captcha_ocr.data.split import fold_test_files
    from captcha_ocr.reading.reader import CaptchaReader
    from captcha_ocr.training.lightning_cli import latest_best_checkpoint

    bold = next(p for p in DESIGN if p.name == "bold")
    versions = [("clean", "-")] + [("bold", strength) for strength in STRENGTHS]
    scores: dict[tuple[str, str, bool], list[float]] = {}
    for fold in (0, 1, 2):
        files = fold_test_files(image_files(args.data_dir), fold=fold, part="val")
        labels = [label_from_name(f) for f in files]
        checkpoint = latest_best_checkpoint(args.runs, f"fold{fold}_seed0")
        if checkpoint is None:
            raise SystemExit(f"stroke_width: no best-*.ckpt in {args.runs / f'fold{fold}_seed0'}")
        reader = CaptchaReader(checkpoint)
        for name, strength in versions:
            rng = np.random.default_rng(fold)
            images = []
            for path in files:
                with Image.open(path) as opened:
                    image = opened.convert("RGB")
                buffer = io.BytesIO()  # read back from a PNG file, as a user's would be
                (image if name == "clean" else bold(image, strength, rng)).save(buffer, format="PNG")
                images.append(Image.open(buffer))
            spec = reader.spec
            prepared = np.stack([eroded_input(image, spec.height, spec.width) for image in images])
            for erode in (False, True):
                readings = reader.read_arrays(prepared.astype(np.float32) / 255) if erode else reader.read(images)
                texts = [r.text for r in readings]
                right = sum(t == g for t, g in zip(texts, labels, strict=True)) / len(labels)
                scores.setdefault((name, strength, erode), []).append(100 * right)
    print("| version | strength | as prepared | heavy ink eroded |\n|---|---|---|---|")
    for name, strength in versions:
        cells = [scores[name, strength, erode] for erode in (False, True)]
        shown = [f"{statistics.mean(c):.1f} ± {statistics.stdev(c):.1f}" for c in cells]
        print(f"| {name} | {strength} | {shown[0]} | {shown[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=find_data_dir(Path(__file__).resolve().parents[1]))
    parser.add_argument("--every", type=int, default=10, help="perturb every this many-th file")
    parser.add_argument("--erode", action="store_true", help="read bold copies with and without the erosion")
    parser.add_argument("--runs", type=Path, default=Path("lightning_logs/cv/crnn"),
                        help="the cross-validation runs whose models read (--erode)")  # fmt: skip
    args = parser.parse_args()
    if args.erode:
        read_eroded(args)
        return
    files = image_files(args.data_dir)
    families = {p.name: p for p in DESIGN}
    rng = np.random.default_rng(0)
    versions = [("clean", "-", files, lambda image: image)]
    for name in ("thin", "bold"):
        for strength in STRENGTHS:
            versions.append((name, strength, files[:: args.every],
                             lambda image, p=families[name], s=strength: p(image, s, rng)))  # fmt: skip
    print("| version | strength | images | 5th | median | 95th |\n|---|---|---|---|---|---|")
    for name, strength, chosen, change in versions:
        widths = []
        for path in chosen:
            with Image.open(path) as opened:
                widths.append(stroke_width(working_crop(change(opened.convert("RGB")))))
        low, mid, high = np.percentile(widths, [5, 50, 95])
        print(f"| {name} | {strength} | {len(widths)} | {low:.2f} | {mid:.2f} | {high:.2f} |")


if __name__ == "__main__":
    main()
