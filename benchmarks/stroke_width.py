"""Can one number per image tell ink thinner or bolder than the data set's? A measure for a
stroke-width normalisation in the preparation, on the clean files and on the weight families.

    python benchmarks/stroke_width.py            # every file clean; every 10th through thin and bold

The width of an image's strokes is estimated as twice the ink's area over the length of its edge
(a stroke of width w and length L has area wL and two edges of length L), on the prepared text
crop (page normalised, cropped to the text) 64 px high, the ink split off by Otsu's threshold.
Printed: the 5th, 50th and 95th percentiles per version. A normalisation needs the clean spread
and each family's spread apart.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from captcha_ocr.analysis.perturbations import DESIGN, STRENGTHS
from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.reading.images import crop_text, ink_mask, normalize_page, to_grey
from captcha_ocr.reading.listing import image_files

HEIGHT = 64  # the crop is measured at this height, whatever the file's size


def stroke_width(image: Image.Image) -> float:
    """Twice the ink area over its edge length, in pixels of the prepared crop ``HEIGHT`` high."""
    crop = crop_text(normalize_page(to_grey(image)))
    crop = crop.resize((max(1, round(crop.width * HEIGHT / crop.height)), HEIGHT), Image.Resampling.BILINEAR)
    ink = ink_mask(crop)  # (H, W)
    edges = (ink[:, 1:] != ink[:, :-1]).sum() + (ink[1:] != ink[:-1]).sum()
    return float(2 * ink.sum() / max(int(edges), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=find_data_dir(Path(__file__).resolve().parents[1]))
    parser.add_argument("--every", type=int, default=10, help="perturb every this many-th file")
    args = parser.parse_args()
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
                widths.append(stroke_width(change(opened.convert("RGB"))))
        low, mid, high = np.percentile(widths, [5, 50, 95])
        print(f"| {name} | {strength} | {len(widths)} | {low:.2f} | {mid:.2f} | {high:.2f} |")


if __name__ == "__main__":
    main()
