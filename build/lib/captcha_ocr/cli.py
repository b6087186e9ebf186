"""The ``captcha-ocr`` command.

captcha-ocr read PATH... [--json] [--backend torch|onnx] [--model FILE]
captcha-ocr export model.onnx [--checkpoint FILE]
captcha-ocr cv --config configs/crnn.yaml --data_dir DIR      (see captcha_ocr.crossval)
"""

import argparse
import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from captcha_ocr.images import IMAGE_SUFFIXES

DELEGATED = {"cv": "captcha_ocr.crossval", "report": "captcha_ocr.report", "synth": "captcha_ocr.synth"}
PROGRESS_THRESHOLD = 200  # show a progress bar from this many images on


def expand_inputs(paths: Sequence[str]) -> Iterator[Path]:
    """Files as given; folders as their image files, sorted by name."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield path


def read(args: argparse.Namespace) -> int:
    from captcha_ocr.reader import CaptchaReader

    try:
        reader = CaptchaReader(args.model, args.backend, args.batch_size, args.threads)
    except (OSError, ValueError, ImportError) as error:
        print(f"captcha-ocr: {error}", file=sys.stderr)
        return 2
    files = list(expand_inputs(args.paths))
    results = reader.iter_read(files)
    if len(files) >= PROGRESS_THRESHOLD and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track

        results = track(results, total=len(files), description="reading", console=Console(stderr=True), transient=True)
    failures = 0
    for path, result in results:
        if isinstance(result, Exception):
            failures += 1
            print(f"captcha-ocr: cannot read {path}: {result}", file=sys.stderr)
        elif args.json:
            print(json.dumps({"file": str(path), "text": result.text, "confidence": round(result.confidence, 6)}))
        else:
            print(f"{path}\t{result.text}\t{result.confidence:.4f}")
    return 1 if failures else 0


def export(args: argparse.Namespace) -> int:
    from captcha_ocr.export import export_onnx
    from captcha_ocr.weights import DEFAULT_WEIGHTS

    path = export_onnx(args.output, args.checkpoint or DEFAULT_WEIGHTS)
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captcha-ocr", description="Read text captchas with a trained model.")
    commands = parser.add_subparsers(dest="command", required=True)

    reading = commands.add_parser(
        "read",
        help="read image files and folders",
        description="Print file<TAB>text<TAB>confidence for every image; exits 1 if any input could not "
        "be read (after reading all the others), 2 if the model cannot be loaded.",
    )
    reading.add_argument("paths", nargs="+", help="image files and folders of images")
    reading.add_argument("--json", action="store_true", help="one JSON object per line instead of TSV")
    reading.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    reading.add_argument(
        "--model", help="checkpoint (.ckpt/.pt), .onnx file, or a shipped model: crnn (default, most accurate), fast"
    )
    reading.add_argument("--batch-size", type=int, default=64)
    reading.add_argument("--threads", type=int, help="CPU threads (default: the backend's choice)")
    reading.set_defaults(run=read)

    exporting = commands.add_parser("export", help="export a checkpoint to ONNX (dynamic batch)")
    exporting.add_argument("output", help="the .onnx file to write")
    exporting.add_argument("--checkpoint", help="Lightning checkpoint or .pt weights; default: the shipped crnn model")
    exporting.set_defaults(run=export)

    for name, text in (
        ("cv", "cross-validate a config over folds and seeds"),
        ("report", "error-analysis tables and figures"),
        ("synth", "draw a labelled synthetic set"),
    ):
        commands.add_parser(name, help=f"{text} ({name} --help)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]])
        module.main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
