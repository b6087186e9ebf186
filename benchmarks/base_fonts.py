"""How ``base`` reads each font of the pretraining's drawing: for every TrueType file at hand that
has all of 0-9 a-z A-Z (``styles.font_files``), ``--count`` captchas drawn by the ``captcha`` and
``easy`` styles in that font alone, read by ``--model``; CER, CER with case ignored, and how many
characters the font draws with another's glyph (such a font is left out of ``styles.font_pool``). One
row per font, worst last, into ``--out``.

    python benchmarks/base_fonts.py --model base --count 40
"""

import argparse
import random
import string
from pathlib import Path

from captcha_ocr.analysis.errors import text_summary
from captcha_ocr.analysis.results import append_rows
from captcha_ocr.data.styles import STYLES, font_files, glyphs
from captcha_ocr.reading.reader import CaptchaReader

ROOT = Path(__file__).resolve().parents[1]
CHARSET = string.digits + string.ascii_letters  # the Makefile's BASE_CHARSET
DRAWN_BY = ("captcha", "easy")  # the two styles that draw one font at a time


def drawn_alike(font_path: Path, characters: str) -> int | None:
    """How many of ``characters`` the font draws with the glyph of another of them (None: it
    lacks one)."""
    drawn = glyphs(font_path, characters)
    return None if drawn is None else len(drawn) - len(set(drawn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="base", help="a shipped name or an .onnx file")
    parser.add_argument("--count", type=int, default=40, help="captchas per font and style")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "base_fonts.csv")
    args = parser.parse_args()
    reader = CaptchaReader(args.model, backend="onnx")
    rng = random.Random(args.seed)
    labels = ["".join(rng.choice(CHARSET) for _ in range(rng.randint(4, 8))) for _ in range(args.count)]
    rows = []
    for path in font_files():
        alike = drawn_alike(path, CHARSET)
        if alike is None:
            continue
        row: dict = {"model": args.model, "font": path.name, "drawn_alike": alike, "images": args.count}
        for name in DRAWN_BY:
            draw = STYLES[name]([path])
            random.seed(args.seed)  # the styles draw from the global generator
            texts = [r.text for r in reader.read([draw(label) for label in labels])]
            row[f"{name}_cer"] = round(text_summary(texts, labels)["cer"], 4)
            lower = text_summary([t.lower() for t in texts], [label.lower() for label in labels])
            row[f"{name}_cer_case_ignored"] = round(lower["cer"], 4)
        rows.append(row)
        print(row, flush=True)
    rows.sort(key=lambda r: sum(r[f"{name}_cer"] for name in DRAWN_BY))
    append_rows(args.out, list(rows[0]), rows)


if __name__ == "__main__":
    main()
