"""The ``captcha-ocr`` command.

captcha-ocr read PATH... [--json] [--backend torch|onnx] [--model FILE]
captcha-ocr serve [--host 127.0.0.1] [--port 8000] [--model crnn|fast|base|FILE] [--backend onnx|torch]
captcha-ocr export model.onnx [--checkpoint FILE]
captcha-ocr train DIR [--labels CSV] [--out runs/NAME]
captcha-ocr cv --config configs/crnn.yaml --data-dir DIR [--folds ..] [--seeds ..] [--model.x=..]
captcha-ocr report --predictions results/crnn_oof.csv --data-dir DIR --out reports/crnn
captcha-ocr synth --count 3000 --charset 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ --length 4-6 --out DIR

Every command's arguments are parsed here, and only here: the modules behind them export typed
functions. The training-side commands (train, cv, report, synth, export) import their module, and with
it torch and Lightning, only when they run. Flags are kebab-case; the snake-case spellings of
earlier versions (``--data_dir``, ``--k``, ``--n``) still work.
"""

import argparse
import errno
import importlib
import importlib.util
import json
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import get_args

from captcha_ocr.reading.answers import ANSWERS, answer_record
from captcha_ocr.reading.images import DEFAULT_MAX_PIXELS
from captcha_ocr.reading.listing import expand_inputs
from captcha_ocr.reading.reader import Backend, Length, Reading, parse_length
from captcha_ocr.reading.weights import SHIPPED
from captcha_ocr.serving.service import Limits

PROGRESS_THRESHOLD = 200  # show a progress bar from this many images on
# A reading-only install (pip install captcha_ocr[onnx]) has no torch: it reads with onnxruntime.
DEFAULT_BACKEND = "torch" if importlib.util.find_spec("torch") else "onnx"
PREPARE_IN_GRAPH_HELP = (
    "prepare images with the .onnx file's own preparation graph, inside onnxruntime (the same arrays "
    "as Python's preparation; slower on 2 cores, docs/speed.md)"
)


def tsv_field(text: str) -> str:
    """A file name made safe for one TSV field: backslash, tab and line breaks escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def format_reading(path: Path, reading: Reading, as_json: bool, with_status: bool, answered: dict | None = None) -> str:
    """One output line; with ``answered`` (``answers.answer_record`` of ``--answer``), the value
    the reading asks for (empty in TSV, null with ``answer_error`` in JSON, when the reading is
    not of that kind)."""
    if as_json:  # ASCII with escapes: valid JSON whatever stdout's encoding
        return json.dumps({"file": str(path), **reading.to_dict(), **(answered or {})})
    status = ("\trejected" if reading.rejected else "\tok") if with_status else ""
    value = "" if answered is None else f"\t{'' if answered['answer'] is None else answered['answer']}"
    return f"{tsv_field(str(path))}\t{reading.text}\t{reading.confidence:.4f}{status}{value}"


def read(args: argparse.Namespace) -> int:
    from captcha_ocr.reading.reader import CaptchaReader

    if sys.stdout is None:  # started with stdout closed (`>&-`): every reading would be lost
        print("captcha-ocr: standard output is closed: nowhere to write the readings", file=sys.stderr)
        return OUTPUT_FAILED

    try:
        reader = CaptchaReader(args.model, args.backend, args.batch_size, args.threads, args.min_confidence,
                               args.max_pixels, args.prepare_in_graph)  # fmt: skip
    except Exception as error:  # a model file is user input: any failure to load it is a one-line reason
        print(f"captcha-ocr: cannot load the model: {error}", file=sys.stderr)
        return 2
    if args.allow is not None:
        try:
            reader.tokenizer.allowed(args.allow)
        except ValueError as error:
            print(f"captcha-ocr: --allow: {error}", file=sys.stderr)
            return 2
    try:
        reader.lengths(args.length)
    except ValueError as error:
        print(f"captcha-ocr: --length: {error}", file=sys.stderr)
        return 2
    files, skipped = expand_inputs(args.paths, args.recursive)
    for entry in skipped:
        print(f"captcha-ocr: skipped {entry}", file=sys.stderr)
    if not files:
        print("captcha-ocr: no image files to read in " + ", ".join(args.paths), file=sys.stderr)
        return 1
    results: Iterable[tuple[object, Reading | Exception]] = reader.iter_read(
        files, allow=args.allow, length=args.length
    )
    if len(files) >= PROGRESS_THRESHOLD and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track

        results = track(results, total=len(files), description="reading", console=Console(stderr=True), transient=True)
    failures = rejected = unanswered = 0
    for path, (_, result) in zip(files, results, strict=True):
        if isinstance(result, Exception):
            failures += 1
            print(f"captcha-ocr: cannot read {path}: {result}", file=sys.stderr)
            continue
        rejected += result.rejected
        answered = answer_record(result.text, args.answer) if args.answer else None
        print(format_reading(path, result, args.json, args.min_confidence > 0, answered))
        unanswered += answered is not None and answered["answer"] is None
    if rejected:
        print(f"captcha-ocr: {rejected} reading(s) below --min-confidence {args.min_confidence}", file=sys.stderr)
    if unanswered:
        print(f"captcha-ocr: {unanswered} reading(s) are not {args.answer} (no answer)", file=sys.stderr)
    return 1 if failures else 3 if rejected or unanswered else 0


def serve(args: argparse.Namespace) -> int:
    try:
        from captcha_ocr.serving import run
    except ImportError:
        print("captcha-ocr: serving needs the serve extra: pip install 'captcha_ocr[serve]'", file=sys.stderr)
        return 2
    limits = Limits(args.max_body_bytes, args.max_pixels, args.max_images, args.timeout, args.max_request_pixels)
    settings = run.ServerSettings(args.model, args.backend, args.threads, model_name(args.model), args.min_confidence,
                                  limits, run.api_key_from_environment(args.api_key),
                                  args.prepare_in_graph)  # fmt: skip
    try:
        reader = settings.reader()
    except Exception as error:
        print(f"captcha-ocr: cannot load the model: {error}", file=sys.stderr)
        return 2
    try:  # bound here, so that an address in use is one line and exit code 2
        listening = run.listen(args.host, args.port)
    except OSError as error:
        print(f"captcha-ocr: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"captcha-ocr: serving {args.model or 'crnn'} ({args.backend}) on http://{args.host}:{args.port}/"
          f"{' with an API key' if settings.api_key else ''}", file=sys.stderr)  # fmt: skip
    run.serve(settings, reader, listening, args.workers, args.log_level, args.shutdown_grace)
    return 0


def model_name(model: str | None) -> str:
    """How the server names its model in answers: a shipped name, or a file's stem (never the
    server's own file path)."""
    return Path(model).stem if model else "crnn"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def length(text: str) -> Length | None:
    try:
        return parse_length(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captcha-ocr", description="Read text captchas with a trained model.")
    commands = parser.add_subparsers(dest="command", required=True)

    reading = commands.add_parser(
        "read",
        help="read image files and folders",
        description="Print file<TAB>text<TAB>confidence for every image (with --min-confidence, a fourth "
        "column: ok or rejected). Exit codes: 0 all read; 1 some input could not be read (after reading all "
        "the others); 2 the model cannot be loaded or an option is wrong; 3 some readings were rejected "
        "(or, with --answer, are not of its kind); 4 the output could not be written (a full disk, a closed "
        "stdout).",
    )
    reading.add_argument("paths", nargs="+", help="image files and folders of images")
    reading.add_argument("--json", action="store_true", help="one JSON object per line instead of TSV")
    reading.add_argument(
        "--backend", choices=get_args(Backend), default=DEFAULT_BACKEND, help="default: torch if installed, else onnx"
    )
    reading.add_argument(
        "--model",
        help="checkpoint (.ckpt/.pt), .onnx file, or a shipped model: crnn (default), fast (a quarter of "
        "the width, faster), base (pretrained on generated captchas of 0-9 a-z A-Z, 4-8 characters)",
    )
    reading.add_argument("--batch-size", type=positive_int, default=64, help="images per forward pass (default 64)")
    reading.add_argument("--threads", type=positive_int, help="CPU threads (default: the backend's choice)")
    reading.add_argument("--prepare-in-graph", action="store_true", help=PREPARE_IN_GRAPH_HELP)
    reading.add_argument(
        "--min-confidence",
        type=probability,
        default=0.0,
        help="mark readings whose confidence is below this (0-1) as rejected; they are still printed",
    )
    reading.add_argument(
        "--allow",
        metavar="CHARS",
        help="read only these characters (e.g. --allow 0123456789 when you know the captcha is digits); the "
        "model's other characters are masked, those it does not know are ignored",
    )
    reading.add_argument(
        "--length",
        type=length,
        metavar="N|MIN-MAX",
        help="read texts of this many characters (5, or 4-6): each reading is the model's most probable text "
        "of such a length, and an image none fits is rejected (default: the label lengths the model was trained "
        "on)",
    )
    reading.add_argument(
        "--answer",
        choices=tuple(ANSWERS),
        help="also print what the captcha asks for: arithmetic gives the value of a reading such as 12+7=? "
        "(a last column; in JSON answer, or null and answer_error when the reading is not arithmetic)",
    )
    reading.add_argument("--recursive", action="store_true", help="read images in subfolders of folders too")
    reading.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger images from their header, undecoded (default {DEFAULT_MAX_PIXELS:,})",
    )
    reading.set_defaults(run=read)

    serving = commands.add_parser(
        "serve",
        help="serve the reader over HTTP (page at /, API docs at /docs)",
        description="An HTTP server for the reader: POST /v1/read; POST /ocr as both ddddocr servers speak it (a "
        "form as ddddocr-fastapi, JSON as ddddocr 1.6.1's API), POST /ocr/batch, GET /health; GET /v1/model, "
        "GET /healthz, a page to try it at /. Binds to 127.0.0.1 unless --host says otherwise.",
    )
    serving.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serving.add_argument("--port", type=port_number, default=8000, help="default 8000")
    serving.add_argument(
        "--model", help="checkpoint (.ckpt/.pt), .onnx file, or a shipped model: crnn (default), fast, base"
    )
    serving.add_argument("--backend", choices=get_args(Backend), default="onnx", help="default onnx (no torch loaded)")
    serving.add_argument("--threads", type=positive_int, help="CPU threads of the model (of each worker)")
    serving.add_argument("--prepare-in-graph", action="store_true", help=PREPARE_IN_GRAPH_HELP)
    serving.add_argument("--workers", type=positive_int, default=1,
                         help="server processes, each with its own model and batcher, sharing the port (default 1); "
                         "more than one lets requests be parsed and images prepared in parallel")  # fmt: skip
    serving.add_argument("--min-confidence", type=probability, default=0.0, help="mark readings below this rejected")
    serving.add_argument("--api-key", help="require this key (X-API-Key header); or set CAPTCHA_OCR_API_KEY")
    limits = Limits()  # the flags' defaults are the server's own
    serving.add_argument("--max-body-bytes", type=positive_int, default=limits.max_body_bytes,
                         help=f"default {limits.max_body_bytes // 2**20} MiB")  # fmt: skip
    serving.add_argument("--max-pixels", type=positive_int, default=limits.max_pixels,
                         help=f"per image (default {limits.max_pixels:,})")  # fmt: skip
    serving.add_argument("--max-images", type=positive_int, default=limits.max_images,
                         help=f"per request (default {limits.max_images})")  # fmt: skip
    serving.add_argument("--max-request-pixels", type=positive_int, default=limits.max_request_pixels,
                         help=f"all images of a request together (default {limits.max_request_pixels:,})")  # fmt: skip
    serving.add_argument("--timeout", type=float, default=limits.timeout_seconds,
                         help=f"seconds a request may take, upload included ({limits.timeout_seconds:g})")  # fmt: skip
    serving.add_argument("--shutdown-grace", type=float, default=5.0,
                         help="seconds open requests get to finish after SIGTERM or Ctrl-C (default 5)")  # fmt: skip
    serving.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    serving.set_defaults(run=serve)

    exporting = commands.add_parser(
        "export",
        help="export a checkpoint to ONNX (dynamic batch), with its spec and its preparation graph in the metadata",
        description="Write one .onnx file that any language with onnxruntime can read captchas with: the network "
        "(images -> logits), and in its metadata the spec (charset, lengths, input) and the graph that prepares "
        "an image's grey pixels into the network's input (examples/node/read.mjs uses nothing else).",
    )
    exporting.add_argument("output", help="the .onnx file to write")
    exporting.add_argument("--checkpoint", help="Lightning checkpoint or .pt weights; default: the shipped crnn model")
    exporting.set_defaults(run=export)

    add_training_commands(commands)
    return parser


def training_module(name: str, command: str) -> ModuleType | None:
    """``captcha_ocr.<name>``, imported when a training-side command runs (it brings torch and
    Lightning); ``None``, with the install line printed, when they are missing."""
    try:
        return importlib.import_module(f"captcha_ocr.{name}")
    except ImportError as error:
        print(f"captcha-ocr: {command} needs the train extra ({error}): pip install 'captcha_ocr[train]'",
              file=sys.stderr)  # fmt: skip
        return None


def export(args: argparse.Namespace) -> int:
    """Exit code 2 for a model file that cannot be loaded, with the reason in one line."""
    if (module := training_module("model.export", "export")) is None:
        return 2
    from captcha_ocr.reading.weights import DEFAULT_WEIGHTS

    try:
        print(f"wrote {module.export_onnx(args.output, args.checkpoint or DEFAULT_WEIGHTS)}")
    except (ValueError, FileNotFoundError) as error:
        print(f"captcha-ocr: cannot export: {error}", file=sys.stderr)
        return 2
    return 0


def cross_validate(args: argparse.Namespace) -> int:
    from captcha_ocr.analysis.results import markdown_table, read_rows, run_summary

    if args.table:
        print(markdown_table(args.table))
        return 0
    if not args.config or not args.data_dir:
        print("captcha-ocr cv: --config and --data-dir are required (or --table to summarise results)", file=sys.stderr)
        return 2
    if (module := training_module("training.crossval", "cv")) is None:
        return 2
    runs = module.cross_validate(args.config, args.data_dir, args.folds, args.seeds, args.name, args.out,
                                 args.overrides)  # fmt: skip
    print(run_summary(read_rows(runs)))
    return 0


def report(args: argparse.Namespace) -> int:
    """Nothing is written for a model or predictions file that cannot be used (exit code 2)."""
    if (evaluation := training_module("training.evaluation", "report")) is None:
        return 2
    from captcha_ocr.analysis.report import write_report

    try:
        results, charset = evaluation.report_results(args.predictions, args.checkpoint, args.data_dir, args.part,
                                                     args.fold, args.charset)  # fmt: skip
    except (ValueError, OSError) as error:
        print(f"captcha-ocr: cannot report: {error}", file=sys.stderr)
        return 2
    print(json.dumps(write_report(results, args.data_dir, args.out, charset, args.worst)))
    print(f"wrote {args.out}")
    return 0


def synth(args: argparse.Namespace) -> int:
    if (module := training_module("data.synth", "synth")) is None:
        return 2
    try:
        if args.kind != "arithmetic" and not args.charset:
            raise ValueError("--charset is needed to draw random labels")
        min_length, max_length = module.parse_lengths(args.length)
        paths = module.synthesize(args.out, args.count, args.charset, min_length, max_length, args.seed, args.width,
                                  args.height, kind=args.kind, style=args.style, workers=args.workers)  # fmt: skip
    except (ValueError, FileExistsError) as error:
        print(f"captcha-ocr: cannot draw: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} images to {args.out}")
    return 0


def default_train_out(folder: Path) -> Path:
    """``runs/<folder name>`` here, or beside the folder when here is inside it (``cd captchas &&
    captcha-ocr train .`` must not write into the images it trains on)."""
    folder, here = folder.resolve(), Path.cwd().resolve()
    base = folder.parent if here == folder or folder in here.parents else here
    return base / "runs" / folder.name


def base_problem(base: str | None) -> str | None:
    """Why ``--base`` cannot start a fine-tuning, or None: it must be a shipped model's name or a
    ``.pt`` / ``.ckpt`` file (an ``.onnx`` file holds no trainable weights)."""
    if base is None or base in SHIPPED:
        return None
    path = Path(base)
    if path.suffix.lower() == ".onnx":
        return f"an .onnx file cannot be trained further: give its .pt file ({path.with_suffix('.pt').name})"
    if path.suffix.lower() not in (".pt", ".ckpt"):
        return f"not a .pt / .ckpt file nor a shipped model ({', '.join(SHIPPED)})"
    if not path.is_file():
        return "no such file"
    return None


def train(args: argparse.Namespace) -> int:
    """Bad input (no folder, too few labels, a bad file) is one line and exit code 2, as for ``fit``."""
    if (module := training_module("training.train", "train")) is None:
        return 2
    if not args.folder.is_dir():
        print(f"captcha-ocr: no folder at {args.folder}", file=sys.stderr)
        return 2
    out = args.out or default_train_out(args.folder)
    if args.unlabelled is not None and not args.unlabelled.is_dir():
        print(f"captcha-ocr: --unlabelled: no folder at {args.unlabelled}", file=sys.stderr)
        return 2
    if (problem := base_problem(args.base)) is not None:
        print(f"captcha-ocr: --base {args.base}: {problem}", file=sys.stderr)
        return 2
    if args.config is not None and not args.config.is_file():
        print(f"captcha-ocr: --config: no file at {args.config}", file=sys.stderr)
        return 2
    try:
        trained = module.train_folder(args.folder, out, args.labels, args.steps, args.folds, args.seed,
                                      sys.stderr.isatty(), args.base, args.head, args.unlabelled,
                                      args.rounds, args.lr, args.resume, args.config)  # fmt: skip
    except module.TrainingStoppedError as error:
        print(f"captcha-ocr: train {error}; the previous model in {out}, if any, is kept", file=sys.stderr)
        return 128 + signal.SIGTERM
    except (ValueError, OSError, KeyError) as error:
        print(f"captcha-ocr: cannot train: {error}", file=sys.stderr)
        return 2
    model = trained.onnx or trained.weights
    print(f"trained on all {trained.labelled_images} labelled images, {trained.steps} steps from "
          f"{args.base or 'random weights'}, in {trained.seconds:.0f} s in all")  # fmt: skip
    if trained.estimate is not None:
        estimate = trained.estimate
        print(f"estimated accuracy on captchas of this style it has not seen ({estimate.folds}-fold cross-validation "
              f"over the {estimate.images} labels, each read by a model trained without it): CER "
              f"{100 * estimate.cer:.2f} %, whole captchas {100 * estimate.whole_acc:.1f} %")  # fmt: skip
        print(f"worst out-of-fold readings: {trained.worst_images}")
    if trained.pseudo_labels:
        print(f"self-training: {' then '.join(map(str, trained.pseudo_labels))} pseudo-labels in "
              f"{len(trained.pseudo_labels)} round(s); the estimate above is of the labels alone")  # fmt: skip
    print(f"model: {trained.weights}" + (f", {trained.onnx}" if trained.onnx else ""))
    backend = " --backend onnx" if trained.onnx else " --backend torch"
    print(f"read:  captcha-ocr read IMAGES --model {model}{backend}")
    print(f"serve: captcha-ocr serve --model {model}{backend}")
    return 0


def add_training_commands(commands: argparse._SubParsersAction) -> None:
    training = commands.add_parser(
        "train",
        help="train a reader on a folder of your own labelled captchas",
        description="Train the default recipe on a folder of labelled captchas (labels from the file names, "
        "226md.png, or --labels CSV; charset and lengths found from them), fine-tuned from the shipped base model. "
        "Every label trains the model that ships; its accuracy on captchas it has not seen is estimated first by "
        "--folds-fold cross-validation across the folder (each run the same fixed --steps schedule). With "
        "--unlabelled, images of the same style without labels are read and the confident, consistent readings "
        "train the next model. Writes model.pt, model.onnx, estimate.csv (the out-of-fold readings) and worst.png "
        "into --out.",
    )
    training.add_argument("folder", type=Path, help="folder of labelled captcha images")
    training.add_argument("--labels", type=Path, help="a file,label CSV instead of the file names")
    training.add_argument("--out", type=Path, help="output folder (default: runs/<folder name>)")
    training.add_argument("--steps", type=positive_int,
                          help="optimizer steps of every training run (default: 200, about a minute on 2 cores, or 53 "
                          "passes over a folder of more than 120 images)")  # fmt: skip
    training.add_argument("--folds", type=non_negative_int, default=3,
                          help="folds of the accuracy estimate (default 3; 0: no estimate, one run)")  # fmt: skip
    training.add_argument("--unlabelled", type=Path, metavar="DIR",
                          help="folder of unlabelled captchas of the same style to self-train on")  # fmt: skip
    training.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    training.add_argument("--rounds", type=positive_int, default=2,
                          help="rounds of self-training with --unlabelled (default 2)")  # fmt: skip
    training.add_argument("--seed", type=non_negative_int, default=0)
    training.add_argument("--resume", action="store_true",
                          help="continue an interrupted run into the same --out from its last saved state (saved "
                          "every 500 steps) instead of starting again")  # fmt: skip
    start = training.add_mutually_exclusive_group()
    start.add_argument("--base", default="base",
                       help="fine-tune from this model: a .pt/.ckpt file or a shipped name (default: base, "
                       "pretrained on captchas drawn by five generator libraries)")  # fmt: skip
    start.add_argument("--from-scratch", dest="base", action="store_const", const=None,
                       help="start from random weights instead of a base model")  # fmt: skip
    training.add_argument("--config", type=Path, metavar="YAML",
                          help="a LightningCLI config layered on the recipe, such as another network "
                          "(configs/ablations/wide.yaml); fine-tuning always takes the --base model's "
                          "network")  # fmt: skip
    training.add_argument("--head", choices=("map", "reinit"), default="map",
                          help="with --base: copy the rows of the characters both charsets share (map) or start "
                          "the output layers afresh (reinit)")  # fmt: skip
    training.set_defaults(run=train)

    cv = commands.add_parser(
        "cv",
        help="cross-validate a config over folds and seeds",
        description="Cross-validate a LightningCLI config: one fit per fold and seed, the checkpoint chosen on "
        "validation, the test fold read once; rows appended to results/<name>_cv.csv and _oof.csv as runs end, "
        "recorded runs skipped. Extra arguments (e.g. --model.head=ctc) go to every run.",
    )
    cv.add_argument("--config", action="append", help="config file; repeat to layer an ablation on a base config")
    cv.add_argument("--table", type=Path, nargs="+", metavar="CSV", help="only print a Markdown table of runs files")
    cv.add_argument("--data-dir", "--data_dir", dest="data_dir", help="folder of labelled captcha images")
    cv.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    cv.add_argument("--seeds", type=int, nargs="+", default=[0])
    cv.add_argument("--name", help="results name (default: stem of the last config)")
    cv.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    cv.set_defaults(run=cross_validate, takes_overrides=True)

    reporting = commands.add_parser(
        "report",
        help="error-analysis tables and figures",
        description="Error-analysis tables (per image, worst, confusions, error rates) and figures, from "
        "per-image results or from a checkpoint evaluated on a part of the split it was trained with.",
    )
    source = reporting.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, help="per-image results (results/<name>_oof.csv)")
    source.add_argument("--checkpoint", type=Path, help="a checkpoint to evaluate on --part of its own split")
    reporting.add_argument("--data-dir", "--data_dir", dest="data_dir", type=Path, required=True,
                           help="folder of the images")  # fmt: skip
    reporting.add_argument("--fold", type=int, help="fold to evaluate on (default: the checkpoint's, else 0)")
    reporting.add_argument("--part", choices=("train", "val", "test"), default="test")
    reporting.add_argument("--charset", help="charset of the confusion matrix (default: the model's)")
    reporting.add_argument("--worst", "--k", dest="worst", type=positive_int, default=16,
                           help="how many worst images to show (default 16)")  # fmt: skip
    reporting.add_argument("--out", type=Path, required=True, help="folder to write into")
    reporting.set_defaults(run=report)

    drawing = commands.add_parser(
        "synth",
        help="draw a labelled synthetic set",
        description="Draw labelled captchas with the captcha package (or five libraries) into a new or empty folder "
        "(<label>.png, <label>_<k>.png when a label repeats); the same seed draws the same files.",
    )
    drawing.add_argument("--count", "--n", dest="count", type=positive_int, required=True, help="number of images")
    drawing.add_argument("--kind", choices=("random", "arithmetic", "both"), default="random",
                         help="random labels of --charset and --length, arithmetic: 12+7=?, 9x3=, ..., or both "
                         "(a tenth arithmetic)")  # fmt: skip
    drawing.add_argument("--style", choices=("captcha", "mixed"), default="captcha",
                         help="draw with the captcha package at --width x --height, or with five generator "
                         "libraries (captcha, wheezy.captcha, claptcha, multicolorcaptcha, easy-captcha-python) at "
                         "their own sizes: the pretraining data of the base model")  # fmt: skip
    drawing.add_argument("--charset", help="characters to draw random labels from")
    drawing.add_argument("--length", default="5", help="label length, or a range such as 4-6")
    drawing.add_argument("--out", type=Path, required=True, help="new or empty folder")
    drawing.add_argument("--seed", type=non_negative_int, default=0)
    drawing.add_argument("--width", type=positive_int, default=160)
    drawing.add_argument("--height", type=positive_int, default=60)
    drawing.add_argument("--workers", type=positive_int, default=1,
                         help="processes that draw (beyond 2,500 images, in chunks of their own seeds: the same "
                         "files for any number above 1; 1 draws one stream from --seed)")  # fmt: skip
    drawing.set_defaults(run=synth)


OUTPUT_FAILED = 4  # exit code: the output could not be written
OUTPUT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF}  # a write to stdout failed


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):  # a file name the terminal cannot encode is escaped, not fatal
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = _dispatch(argv)
        if sys.stdout is not None:
            sys.stdout.flush()
        return code
    except BrokenPipeError:  # `captcha-ocr read DIR | head -1`: the reader of the output left
        _discard_stdout()
        return 1
    except OSError as error:  # `> /dev/full`: the output is lost, so say so and fail
        if error.errno not in OUTPUT_ERRORS:
            raise
        _discard_stdout()
        print(f"captcha-ocr: cannot write the output: {error.strerror or error}", file=sys.stderr)
        return OUTPUT_FAILED


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit cannot fail too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args, overrides = parser.parse_known_args(argv)
    if overrides and not getattr(args, "takes_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(overrides)}")
    args.overrides = overrides
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
