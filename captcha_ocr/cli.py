"""The ``captcha-ocr`` command.

captcha-ocr read PATH... [--json] [--backend torch|onnx] [--model FILE]
captcha-ocr serve [--host 127.0.0.1] [--port 8000] [--model crnn|fast|FILE] [--backend onnx|torch]
captcha-ocr export model.onnx [--checkpoint FILE]
captcha-ocr cv --config configs/crnn.yaml --data_dir DIR      (see captcha_ocr.crossval)
"""

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from captcha_ocr.images import IMAGE_SUFFIXES
from captcha_ocr.reader import Reading

DELEGATED = {"cv": "captcha_ocr.crossval", "report": "captcha_ocr.report", "synth": "captcha_ocr.synth"}
PROGRESS_THRESHOLD = 200  # show a progress bar from this many images on


def expand_inputs(paths: Sequence[str], recursive: bool = False) -> tuple[list[Path], list[Path]]:
    """Files as given; folders as their image files, sorted by name (with ``recursive``, those of
    their subfolders too). Returns the files to read and the subfolders left out."""
    files: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            files.append(path)
            continue
        entries = sorted(path.rglob("*") if recursive else path.iterdir())
        files += [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        skipped += [] if recursive else [p for p in entries if p.is_dir()]
    return files, skipped


def tsv_field(text: str) -> str:
    """A file name made safe for one TSV field: backslash, tab and line breaks escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def format_reading(path: Path, reading: Reading, as_json: bool, with_status: bool) -> str:
    if as_json:
        record = {
            "file": str(path),
            "text": reading.text,
            "confidence": round(reading.confidence, 6),
            "characters": [round(c, 6) for c in reading.characters],
            "rejected": reading.rejected,
        }
        return json.dumps(record, ensure_ascii=False)
    status = ("\trejected" if reading.rejected else "\tok") if with_status else ""
    return f"{tsv_field(str(path))}\t{reading.text}\t{reading.confidence:.4f}{status}"


def read(args: argparse.Namespace) -> int:
    from captcha_ocr.reader import CaptchaReader

    try:
        reader = CaptchaReader(args.model, args.backend, args.batch_size, args.threads, args.min_confidence)
    except Exception as error:  # a model file is user input: any failure to load it is a one-line reason
        print(f"captcha-ocr: cannot load the model: {error}", file=sys.stderr)
        return 2
    files, skipped = expand_inputs(args.paths, args.recursive)
    if skipped:
        print(f"captcha-ocr: skipped {len(skipped)} subfolder(s), e.g. {skipped[0]} (--recursive reads them)",
              file=sys.stderr)  # fmt: skip
    if not files:
        print("captcha-ocr: no image files to read in " + ", ".join(args.paths), file=sys.stderr)
        return 1
    results = reader.iter_read(files)
    if len(files) >= PROGRESS_THRESHOLD and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track

        results = track(results, total=len(files), description="reading", console=Console(stderr=True), transient=True)
    failures = rejected = 0
    for path, result in results:
        if isinstance(result, Exception):
            failures += 1
            print(f"captcha-ocr: cannot read {path}: {result}", file=sys.stderr)
            continue
        rejected += result.rejected
        print(format_reading(path, result, args.json, args.min_confidence > 0))
    if rejected:
        print(f"captcha-ocr: {rejected} reading(s) below --min-confidence {args.min_confidence}", file=sys.stderr)
    return 1 if failures else 3 if rejected else 0


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from captcha_ocr.server import Limits, create_app
    except ImportError:
        print("captcha-ocr: serving needs the serve extra: pip install 'captcha_ocr[serve]'", file=sys.stderr)
        return 2
    from captcha_ocr.reader import CaptchaReader

    try:
        reader = CaptchaReader(args.model, args.backend, num_threads=args.threads, min_confidence=args.min_confidence)
    except Exception as error:
        print(f"captcha-ocr: cannot load the model: {error}", file=sys.stderr)
        return 2
    limits = Limits(args.max_body_bytes, args.max_pixels, args.max_images, args.timeout)
    api_key = args.api_key or os.environ.get("CAPTCHA_OCR_API_KEY") or None
    app = create_app(reader, args.model or "crnn", limits, api_key)
    print(f"captcha-ocr: serving {args.model or 'crnn'} ({args.backend}) on http://{args.host}:{args.port}/"
          f"{' with an API key' if api_key else ''}", file=sys.stderr)  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def export(args: argparse.Namespace) -> int:
    from captcha_ocr.export import export_onnx
    from captcha_ocr.weights import DEFAULT_WEIGHTS

    path = export_onnx(args.output, args.checkpoint or DEFAULT_WEIGHTS)
    print(f"wrote {path}")
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captcha-ocr", description="Read text captchas with a trained model.")
    commands = parser.add_subparsers(dest="command", required=True)

    reading = commands.add_parser(
        "read",
        help="read image files and folders",
        description="Print file<TAB>text<TAB>confidence for every image (with --min-confidence, a fourth "
        "column: ok or rejected). Exit codes: 0 all read; 1 some input could not be read (after reading all "
        "the others); 2 the model cannot be loaded or an option is wrong; 3 some readings were rejected.",
    )
    reading.add_argument("paths", nargs="+", help="image files and folders of images")
    reading.add_argument("--json", action="store_true", help="one JSON object per line instead of TSV")
    reading.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    reading.add_argument(
        "--model", help="checkpoint (.ckpt/.pt), .onnx file, or a shipped model: crnn (default, most accurate), fast"
    )
    reading.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default 64)")
    reading.add_argument("--threads", type=positive_int, help="CPU threads (default: the backend's choice)")
    reading.add_argument(
        "--min-confidence",
        type=probability,
        default=0.0,
        help="mark readings whose confidence is below this (0-1) as rejected; they are still printed",
    )
    reading.add_argument("--recursive", action="store_true", help="read images in subfolders of folders too")
    reading.set_defaults(run=read)

    serving = commands.add_parser(
        "serve",
        help="serve the reader over HTTP (page at /, API docs at /docs)",
        description="An HTTP server for the reader: POST /v1/read, POST /ocr (ddddocr-compatible), GET /v1/model, "
        "GET /healthz, a page to try it at /. Binds to 127.0.0.1 unless --host says otherwise.",
    )
    serving.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument("--model", help="checkpoint (.ckpt/.pt), .onnx file, or a shipped model: crnn (default), fast")
    serving.add_argument("--backend", choices=("torch", "onnx"), default="onnx", help="default onnx (no torch loaded)")
    serving.add_argument("--threads", type=positive_int, help="CPU threads of the model")
    serving.add_argument("--min-confidence", type=probability, default=0.0, help="mark readings below this rejected")
    serving.add_argument("--api-key", help="require this key (X-API-Key header); or set CAPTCHA_OCR_API_KEY")
    serving.add_argument("--max-body-bytes", type=positive_int, default=8 * 1024 * 1024, help="default 8 MiB")
    serving.add_argument("--max-pixels", type=positive_int, default=4_000_000, help="per image (default 4 M)")
    serving.add_argument("--max-images", type=positive_int, default=64, help="per request (default 64)")
    serving.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default 10)")
    serving.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    serving.set_defaults(run=serve)

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
    for stream in (sys.stdout, sys.stderr):  # a file name the terminal cannot encode is escaped, not fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        return _dispatch(argv)
    except BrokenPipeError:  # `captcha-ocr read DIR | head -1`: the reader of the output left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _dispatch(argv: list[str]) -> int:
    if argv[:1] and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]])
        return module.main(argv[1:]) or 0  # a delegated command's own exit code
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
