"""How many labels a style this project never saw needs, measured by the path users take.

For each held-out style (``held_out_styles.py``) and for captcha_images_v2 (fold 0): a folder of
exactly N labelled images goes into ``captcha-ocr train`` (a subprocess, the installed command),
and the model it writes reads test images of that style that no step saw (300 drawn apart, or
fold 0's 208; ``captcha_images_v2_val``: folders from fold 0's training part, read on its 83
validation images, to choose on). Several draws of N per size, each with its own images and
training seed. Beside them, with no labels: ``base`` restricted to the style's characters (and
to its length), and ddddocr restricted to its characters. With ``--unlabelled M``, the folder
also comes with M unlabelled images of the style (``--unlabelled DIR``). Rows are appended to
``--out`` as each run ends; a row already there is not run again.

    python benchmarks/cross_style.py --sizes 50 100 --draws 3 --estimate-sizes 50
    python benchmarks/cross_style.py --sizes 50 --draws 3 --unlabelled 1000
    python benchmarks/cross_style.py --styles generate_captcha --sizes 50 --base runs/base/model.pt
    python benchmarks/cross_style.py --table
"""

import argparse
import importlib.metadata
import math
import random
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from held_out_styles import HELD_OUT_STYLES, STYLES, draw_style

from captcha_ocr.analysis.errors import summary, text_summary
from captcha_ocr.analysis.results import ImageResult, append_rows, read_rows
from captcha_ocr.data.dataset import label_from_name
from captcha_ocr.data.sources import find_data_dir
from captcha_ocr.data.split import fold_split
from captcha_ocr.reading.listing import image_files
from captcha_ocr.reading.reader import CaptchaReader

ROOT = Path(__file__).resolve().parents[1]
V2 = "captcha_images_v2"
V2_VAL = "captcha_images_v2_val"  # the data set to choose on: fold 0's validation part is read
TEST_IMAGES, POOL_IMAGES = 300, 600  # per held-out style: test images; images labelled folders are drawn from
COLUMNS = ["style", "reader", "labels", "unlabelled", "draw", "folds", "steps", "estimate_cer", "estimate_whole_acc",
           "pseudo_labels", "test_images", "cer", "whole_acc", "seconds"]  # fmt: skip


def style_seed(name: str, part: str) -> int:
    """A seed per style and part (test, pool, unlabelled), the same on every machine."""
    return sum((i + 1) * ord(c) for i, c in enumerate(f"{name}/{part}"))


def write_images(folder: Path, items: list[tuple[str, object]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (text, image) in enumerate(items):
        path = folder / f"{text}_{index:04d}.png"
        image.save(path)
        paths.append(path)
    return paths


def style_data(name: str, data: Path, unlabelled: int) -> tuple[str, list[Path], list[Path], list[Path]]:
    """The style's charset, its test images, the pool labelled folders are drawn from, and
    ``unlabelled`` images (drawn once into ``data``, reused after)."""
    if name in (V2, V2_VAL):
        files = image_files(find_data_dir(ROOT))
        split = fold_split(len(files), fold=0)
        charset = "".join(sorted({c for f in files for c in f.stem}))
        test, pool = (split.test, split.train + split.val) if name == V2 else (split.val, split.train)
        return charset, [files[i] for i in test], [files[i] for i in pool], []
    folder = data / name
    parts = {"test": TEST_IMAGES, "pool": POOL_IMAGES, "unlabelled": unlabelled}
    paths = {}
    for part, count in parts.items():
        existing = sorted((folder / part).glob("*.png"))
        if len(existing) < count:
            _, items = draw_style(name, count, style_seed(name, part))
            existing = write_images(folder / part, items)
        paths[part] = existing[:count]
    return STYLES[name]().charset, paths["test"], paths["pool"], paths["unlabelled"]


def score(test: list[Path], texts: list[str]) -> dict:
    headline = text_summary(texts, [label_from_name(path) for path in test])
    return {"test_images": len(test), "cer": round(headline["cer"], 5), "whole_acc": round(headline["whole_acc"], 5)}


def zero_shot_name(base_model: str) -> str:
    """The reader column of a base model's rows with no labels: ``base``, or the model named."""
    return "base" if base_model == "base" else f"base {base_model}"


def zero_shot_rows(name: str, charset: str, length: int | None, test: list[Path], base_model: str) -> list[dict]:
    """``base_model`` (a shipped name or a model file) restricted to the style's characters, then to
    its length too; ddddocr restricted to its characters."""
    rows = []
    base = CaptchaReader(base_model, backend="onnx" if Path(base_model).suffix in ("", ".onnx") else "torch")
    allowed = "".join(c for c in charset if c in base.tokenizer.charset)
    label = zero_shot_name(base_model)
    for reader, constraint in ((label, None), (f"{label}, length known", length)):
        if reader != label and constraint is None:
            continue
        readings = base.read(test, allow=allowed, length=constraint)
        rows.append({"reader": reader, **score(test, [r.text for r in readings])})
    try:
        import ddddocr
    except ImportError:
        print("cross_style: ddddocr is not installed, left out", file=sys.stderr)
        return rows
    ocr = ddddocr.DdddOcr(show_ad=False)
    ocr.set_ranges(charset)
    texts = [ocr.classification(path.read_bytes()) for path in test]
    rows.append({"reader": f"ddddocr {importlib.metadata.version('ddddocr')}", **score(test, texts)})
    return rows


def train_row(
    name: str, test: list[Path], pool: list[Path], unlabelled: list[Path], labels: int, draw: int, folds: int,
    steps: int | None, runs: Path, extra_args: list[str], reader: str,
) -> dict:  # fmt: skip
    """One user's run: a folder of ``labels`` images into ``captcha-ocr train``, the model it
    writes reading ``test``."""
    variant = re.sub(r"[^\w.]+", "_", "_".join(["", *extra_args]).replace("-", ""))  # one folder name
    run = runs / name / f"n{labels}_u{len(unlabelled)}_d{draw}{variant}"
    folder = run / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for path in random.Random(draw).sample(pool, labels):
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    command = [str(Path(sys.executable).parent / "captcha-ocr"), "train", str(folder), "--out", str(run / "out"),
               "--folds", str(folds), "--seed", str(draw)]  # fmt: skip
    if steps is not None:
        command += ["--steps", str(steps)]
    command += extra_args
    if unlabelled:
        extra = run / "unlabelled"
        extra.mkdir(exist_ok=True)
        for path in unlabelled:
            if not (extra / path.name).exists():
                (extra / path.name).symlink_to(path.resolve())
        command += ["--unlabelled", str(extra)]
    start = time.perf_counter()
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    (run / "train.log").write_text(printed)
    readings = CaptchaReader(run / "out" / "model.onnx", backend="onnx").read(test)
    row = {"reader": reader, "labels": labels, "unlabelled": len(unlabelled), "draw": draw,
           "folds": folds, "seconds": round(seconds, 1), **score(test, [r.text for r in readings])}  # fmt: skip
    estimates = read_rows(run / "out" / "estimate.csv")
    if estimates:
        results = [ImageResult(r["file"], r["label"], r["text"], math.nan, math.nan) for r in estimates]
        headline = summary(results)
        row |= {"estimate_cer": round(headline["cer"], 5), "estimate_whole_acc": round(headline["whole_acc"], 5)}
    for line in printed.splitlines():
        if line.startswith("self-training:"):
            row["pseudo_labels"] = line.split()[1]
        if line.startswith("trained on all"):
            row["steps"] = int(line.split(", ")[1].split()[0])
    return row


def table(rows: list[dict]) -> str:
    """Mean ± std over draws of whole-captcha accuracy (CER), per style, reader and size."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["style"], row["reader"], row["labels"], row["unlabelled"]), []).append(row)
    lines = ["| style | reader | labels | unlabelled | runs | whole captchas % | CER % | estimate, whole % |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (style, reader, labels, unlabelled), members in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1],
                                                                int(g[0][2] or 0), int(g[0][3] or 0))):  # fmt: skip
        whole = [100 * float(m["whole_acc"]) for m in members]
        cer = [100 * float(m["cer"]) for m in members]
        estimates = [100 * float(m["estimate_whole_acc"]) for m in members if m.get("estimate_whole_acc")]
        spread = f" ± {statistics.stdev(whole):.1f}" if len(whole) > 1 else ""
        cer_spread = f" ± {statistics.stdev(cer):.2f}" if len(cer) > 1 else ""
        estimate = ", ".join(f"{e:.1f}" for e in estimates)
        lines.append(f"| {style} | {reader} | {labels or '-'} | {unlabelled or '-'} | {len(members)} | "
                     f"{statistics.mean(whole):.1f}{spread} | {statistics.mean(cer):.2f}{cer_spread} | "
                     f"{estimate} |")  # fmt: skip
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Whole-captcha accuracy against labels, one panel per style: ``captcha-ocr train`` (mean and
    each draw; with unlabelled images apart), ``base`` and ddddocr with no labels as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = sorted({r["style"] for r in rows})
    sizes_shown = sorted({int(r["labels"]) for r in rows if r["labels"]})
    figure, axes = plt.subplots(1, len(styles), figsize=(4.2 * len(styles), 3.6), sharey=True, squeeze=False)
    for axis, style in zip(axes[0], styles, strict=True):
        mine = [r for r in rows if r["style"] == style]
        for reader, colour in (("captcha-ocr train", "C0"),):
            for unlabelled, marker in (("0", "o"), ("1000", "*")):
                runs = [r for r in mine if r["reader"] == reader and r["unlabelled"] == unlabelled]
                sizes = sorted({int(r["labels"]) for r in runs})
                if not sizes:
                    continue
                means = [
                    statistics.mean(100 * float(r["whole_acc"]) for r in runs if int(r["labels"]) == n) for n in sizes
                ]
                label = reader if unlabelled == "0" else f"{reader} + {unlabelled} unlabelled"
                axis.plot(sizes, means, marker=marker, color=colour if unlabelled == "0" else "C2", label=label)
                axis.scatter([int(r["labels"]) for r in runs], [100 * float(r["whole_acc"]) for r in runs], s=8,
                             color=colour if unlabelled == "0" else "C2", alpha=0.4)  # fmt: skip
        for reader, colour in (("base", "C1"), ("ddddocr", "C3")):
            zero = [
                r for r in mine if r["reader"].startswith(reader) and not r["labels"] and "length" not in r["reader"]
            ]
            if zero:
                axis.axhline(100 * float(zero[0]["whole_acc"]), color=colour, linestyle="--",
                             label=f"{zero[0]['reader']}, no labels")  # fmt: skip
        axis.set(title=style, xscale="log", xlabel="labelled images", xlim=(20, 1.25 * max(sizes_shown)),
                 ylim=(0, 100))  # fmt: skip
        axis.set_xticks(sizes_shown, [str(n) for n in sizes_shown])
        axis.minorticks_off()
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("whole captchas right, %")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--styles", nargs="+", default=[*HELD_OUT_STYLES, V2], choices=[*STYLES, V2, V2_VAL],
                        help="default: the held-out styles and captcha_images_v2; generate_captcha is the design "
                        "style that recipe choices are measured on, and captcha_images_v2_val the data set's "
                        "validation part")  # fmt: skip
    parser.add_argument("--sizes", type=int, nargs="*", default=[25, 50, 100, 200], help="labelled images per run")
    parser.add_argument("--draws", type=int, default=3, help="runs per size, each with its own images and seed")
    parser.add_argument("--estimate-sizes", type=int, nargs="*", default=[], metavar="N",
                        help="sizes whose first draw also prints the estimate (captcha-ocr train's default "
                        "folds); the others train with --folds 0, which ships the same model")  # fmt: skip
    parser.add_argument("--unlabelled", type=int, default=0, help="unlabelled images of the style per run")
    parser.add_argument("--steps", type=int, help="captcha-ocr train --steps (default: its own)")
    parser.add_argument("--train-args", type=shlex.split, default=[], metavar="'ARGS'",
                        help="more arguments of captcha-ocr train, quoted as one (a variant: its rows name "
                        "them), e.g. --train-args '--lr 0.0003'")  # fmt: skip
    parser.add_argument("--base", default="base", metavar="MODEL",
                        help="the base model: read with no labels, and fine-tuned by captcha-ocr train --base "
                        "(a shipped name or a .pt file; another than base is named in the rows)")  # fmt: skip
    parser.add_argument("--no-zero-shot", action="store_true", help="leave out base and ddddocr with no labels")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "cross_style", help="drawn images")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "cross_style", help="training folders")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "cross_style.csv")
    parser.add_argument("--table", action="store_true", help="only print the table of --out")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="only draw the curves of --out into PNG")
    args = parser.parse_args(argv)
    if args.base != "base":
        args.train_args = ["--base", args.base, *args.train_args]
    if args.table or args.plot:
        if args.plot:
            plot(read_rows(args.out), args.plot)
        print(table(read_rows(args.out)))
        return
    for name in args.styles:
        charset, test, pool, unlabelled = style_data(name, args.data, args.unlabelled)
        length = None if name in (V2, V2_VAL) else STYLES[name]().length
        done = {(r["style"], r["reader"], r["labels"], r["unlabelled"], r["draw"]) for r in read_rows(args.out)}
        if not args.no_zero_shot and (name, zero_shot_name(args.base), "", "", "") not in done:
            rows = zero_shot_rows(name, charset, length, test, args.base)
            append_rows(args.out, COLUMNS, [{"style": name, **row} for row in rows])
        for labels in args.sizes:
            for draw in range(args.draws):
                reader = " ".join(["captcha-ocr train", *args.train_args])
                key = (name, reader, str(labels), str(args.unlabelled), str(draw))
                if key in done:
                    continue
                folds = 3 if args.unlabelled or (labels in args.estimate_sizes and draw == 0) else 0
                row = train_row(name, test, pool, unlabelled, labels, draw, folds, args.steps, args.runs,
                                args.train_args, reader)  # fmt: skip
                append_rows(args.out, COLUMNS, [{"style": name, **row}])
                print(f"{name}, {labels} labels, draw {draw}: whole {100 * row['whole_acc']:.1f} %, "
                      f"CER {100 * row['cer']:.2f} %, {row['seconds']:.0f} s", flush=True)  # fmt: skip
    print(table(read_rows(args.out)))


if __name__ == "__main__":
    main()
