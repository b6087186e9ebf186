"""How many arithmetic captchas a ``captcha-ocr train`` run answers right on images it did not train on.

    captcha-ocr synth --kind arithmetic --count 4000 --out data/arithmetic --seed 1
    captcha-ocr train data/arithmetic --out runs/arithmetic
    python benchmarks/arithmetic.py runs/arithmetic

Reads the run's ``estimate.csv`` (every out-of-fold reading; ``held_out.csv`` of a run of 0.3,
which held out a fifth) and prints the share
of readings that are the label exactly, and of answers (``reading.answers``) that are the
label's: a reading can be wrong and its answer right (``7+7=`` read ``7+7=?``).
"""

import argparse
from pathlib import Path

from captcha_ocr.analysis.results import read_image_results
from captcha_ocr.reading.answers import arithmetic_answer


def answer_or_none(text: str) -> int | None:
    try:
        return arithmetic_answer(text)
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the output folder of captcha-ocr train")
    run = parser.parse_args().run
    results = read_image_results(run / "estimate.csv" if (run / "estimate.csv").exists() else run / "held_out.csv")
    texts = sum(r.text == r.label for r in results)
    answers = sum(answer_or_none(r.text) == arithmetic_answer(r.label) for r in results)
    unparsed = sum(answer_or_none(r.text) is None for r in results)
    print(
        f"{len(results)} captchas not trained on: readings right {100 * texts / len(results):.2f} %, "
        f"answers right {100 * answers / len(results):.2f} %, readings that are not arithmetic: {unparsed}"
    )
    for r in results:
        if answer_or_none(r.text) != arithmetic_answer(r.label):
            print(f"  {r.file}: read {r.text!r} -> {answer_or_none(r.text)}")


if __name__ == "__main__":
    main()
