import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from captcha_ocr.analysis.results import read_rows
from captcha_ocr.cli import main as cli
from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.model.export import describe, export_onnx
from captcha_ocr.reading.reader import CaptchaReader

from .helpers import ROOT, draw_captcha, write_tiny_weights


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")


@pytest.fixture(scope="module")
def tiny_onnx(tiny_weights: Path) -> Path:
    return export_onnx(tiny_weights.with_suffix(".onnx"), tiny_weights)


def test_reader_accepts_paths_and_images_of_any_size_and_mode(tiny_weights: Path, tmp_path: Path) -> None:
    reader = CaptchaReader(tiny_weights, batch_size=2)
    draw_captcha("226md").save(tmp_path / "a.png")
    sources = [tmp_path / "a.png", draw_captcha("226md", (400, 100), "RGB"), draw_captcha("226md", mode="P"),
               draw_captcha("226md", (1, 1)), draw_captcha("226md", (10000, 50), "L")]  # fmt: skip
    readings = reader.read(sources)
    assert len(readings) == 5
    assert all(0 <= r.confidence <= 1 and len(r.text) <= 5 for r in readings)
    again = reader.read([Image.open(tmp_path / "a.png")])[0]  # path and opened image agree
    assert (again.text, again.confidence) == (readings[0].text, pytest.approx(readings[0].confidence, rel=1e-4))


def test_reader_reports_bad_inputs_and_reads_the_rest(tiny_weights: Path, tmp_path: Path) -> None:
    draw_captcha("226md").save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    reader = CaptchaReader(tiny_weights, batch_size=1)
    results = list(reader.iter_read([tmp_path / "bad.png", tmp_path / "good.png", tmp_path / "missing.png"]))
    assert [type(r).__name__ for _, r in results] == ["UnidentifiedImageError", "Reading", "FileNotFoundError"]
    with pytest.raises(OSError):
        reader.read([tmp_path / "bad.png"])


def test_reader_is_safe_to_share_between_threads(tiny_weights: Path) -> None:
    reader = CaptchaReader(tiny_weights)
    images = [draw_captcha(label) for label in ("226md", "bcdef", "nnn2b", "wxy78")]
    expected = reader.read(images)
    outputs: list = [None] * 8

    def work(slot: int) -> None:
        outputs[slot] = reader.read(images)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(output == expected for output in outputs)


def test_onnx_backend_matches_torch(tiny_weights: Path, tiny_onnx: Path) -> None:
    torch_reader, onnx_reader = CaptchaReader(tiny_weights), CaptchaReader(tiny_onnx, backend="onnx")
    batch = np.stack([torch_reader.preprocess(draw_captcha(t)) for t in ("226md", "bcdef", "nnn2b")])
    np.testing.assert_allclose(onnx_reader.logits(batch), torch_reader.logits(batch), atol=1e-4)
    single_onnx, single_torch = onnx_reader.read_arrays(batch[:1])[0], torch_reader.read_arrays(batch[:1])[0]
    assert single_onnx.text == single_torch.text  # a batch of one: the batch axis is dynamic
    assert single_onnx.confidence == pytest.approx(single_torch.confidence, rel=1e-4)


def test_load_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model file"):
        CaptchaReader(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.pt is not a readable torch file"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="backend"):
        CaptchaReader(tmp_path / "junk.pt", backend="tf")


def test_read_command_prints_tsv_and_json_and_exit_code(tiny_weights: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for label in ("226md", "bcdef"):
        draw_captcha(label).save(folder / f"{label}.png")
    assert cli(["read", str(folder), "--model", str(tiny_weights)]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert [line.split("\t")[0] for line in lines] == [str(folder / "226md.png"), str(folder / "bcdef.png")]
    (folder / "broken.png").write_text("no image")
    assert cli(["read", str(folder), "--json", "--model", str(tiny_weights)]) == 1
    captured = capsys.readouterr()
    assert len([json.loads(line) for line in captured.out.strip().split("\n")]) == 2
    assert "broken.png" in captured.err


def test_onnx_file_says_what_it_takes_and_gives(tiny_onnx: Path) -> None:
    import onnx
    import onnxruntime as ort

    spec = CaptchaReader(tiny_onnx, backend="onnx").spec
    graph = onnx.load(tiny_onnx)
    model, images, logits = graph.doc_string, graph.graph.input[0].doc_string, graph.graph.output[0].doc_string
    assert (spec.min_length, spec.max_length, spec.height, spec.width) == (5, 5, 32, 128)
    assert "of 5 characters from the charset '2345678bcdefgmnpwxy'" in model
    assert "(batch, 1, 32, 128) in [0, 1]" in images and "cropped to the text" in images
    assert "normalize_page" not in images  # this tiny model does not normalise the page
    assert f"(batch, 5, {len(spec.charset) + 1})" in logits and "class 0 (no character)" in logits
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().description == model  # what a reader in another language sees
    assert "step i is the i-th character" in logits  # the position head
    ranged, normalised, _ = describe(replace(spec, min_length=4, max_length=6, normalize=True))
    assert "of 4-6 characters" in ranged and "normalize_page" in normalised
    _, _, joint = describe(replace(spec, head="joint"))
    columns = spec.feature_map_size()[1]
    assert f"(batch, {5 + columns}, " in joint and "the first 5 steps read the text" in joint
    assert f"the other {columns}, one per strip of the image, are a CTC head" in joint


def test_onnx_backend_runs_without_torch(tiny_onnx: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        "from captcha_ocr.reading.reader import CaptchaReader\n"
        "from PIL import Image\n"
        f"reader = CaptchaReader({str(tiny_onnx)!r}, backend='onnx')\n"
        "print(reader.read([Image.new('L', (200, 50), 255)])[0].text != None)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def fold0_test_images(real_data: Path) -> list[Path]:
    from captcha_ocr.data.split import fold_test_files
    from captcha_ocr.reading.listing import image_files

    return fold_test_files(image_files(real_data))


@pytest.mark.parametrize(("model", "runs"), [("crnn", "crnn_rerun_cv.csv"), ("fast", "small_cv.csv")])
def test_shipped_model_reads_its_test_fold(real_data: Path, model: str, runs: str) -> None:
    files = fold0_test_images(real_data)
    readings = CaptchaReader(model).read(files)
    wrong = [(f.stem, r.text) for f, r in zip(files, readings, strict=True) if f.stem != r.text]
    assert len(files) == 208
    # as many wrong characters as the shipped run recorded (fold 0, seed 0 of its runs file)
    (row,) = [r for r in read_rows(ROOT / "results" / runs) if (r["fold"], r["seed"]) == ("0", "0")]
    wrong_characters = sum(Levenshtein.distance(f.stem, r.text) for f, r in zip(files, readings, strict=True))
    assert wrong_characters == round(float(row["test_cer"]) * 208 * 5), wrong


def test_shipped_onnx_matches_shipped_torch_on_real_images(real_data: Path) -> None:
    torch_reader, onnx_reader = CaptchaReader(), CaptchaReader(backend="onnx")
    batch = np.stack([torch_reader.preprocess(f) for f in fold0_test_images(real_data)[:64]])
    np.testing.assert_allclose(onnx_reader.logits(batch), torch_reader.logits(batch), atol=1e-4)
    assert [r.text for r in onnx_reader.read_arrays(batch)] == [r.text for r in torch_reader.read_arrays(batch)]


def test_min_confidence_marks_readings_rejected_without_dropping_them(tiny_weights: Path) -> None:
    images = [draw_captcha("226md"), draw_captcha("bcdef")]
    readings = CaptchaReader(tiny_weights).read(images)
    assert not any(r.rejected for r in readings)
    strict = CaptchaReader(tiny_weights, min_confidence=1.0).read(images)  # an untrained model is never sure
    assert [r.rejected for r in strict] == [True, True]
    assert [r.text for r in strict] == [r.text for r in readings]
    assert all(len(r.characters) == len(r.text) and all(0 < c <= 1 for c in r.characters) for r in readings)
    with pytest.raises(ValueError, match="min_confidence"):
        CaptchaReader(tiny_weights, min_confidence=1.5)


def test_reader_accepts_arrays_tensors_and_bytes(tiny_weights: Path, tmp_path: Path) -> None:
    import torch

    image = draw_captcha("226md", mode="RGB")
    image.save(tmp_path / "a.png")
    pixels = np.asarray(image)  # (H, W, 3) uint8
    sources = [
        image,
        pixels,
        pixels.astype(np.float32) / 255,
        torch.from_numpy(pixels.copy()).permute(2, 0, 1),  # (3, H, W)
        (tmp_path / "a.png").read_bytes(),
    ]
    reader = CaptchaReader(tiny_weights)
    expected = reader.preprocess(image)
    for source in sources:
        np.testing.assert_allclose(reader.preprocess(source), expected, atol=1 / 255)
    with pytest.raises(TypeError, match="list"):
        reader.read(str(tmp_path / "a.png"))  # one path, not a list: not read character by character
    with pytest.raises(TypeError, match="cannot read a dict"):
        reader.preprocess({"image": 1})


def test_a_model_file_cannot_run_code(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    with evil.open("wb") as file:
        pickle.dump({"hyper_parameters": Payload(), "state_dict": {}}, file)
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        CaptchaReader(evil)
    assert not marker.exists()
    assert cli(["read", str(evil), "--model", str(evil)]) == 2
    assert not marker.exists()


def test_read_command_options_and_streams(tiny_weights: Path, tiny_onnx: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    draw_captcha("226md").save(folder / "tab\there.png")
    draw_captcha("bcdef").save(folder / "sub" / "inner.png")
    assert cli(["read", str(folder), "--model", str(tiny_weights), "--min-confidence", "1"]) == 3
    captured = capsys.readouterr()
    assert captured.out.strip().split("\t")[0] == str(folder / "tab\\there.png")  # the tab is escaped
    assert captured.out.strip().endswith("\trejected")
    assert f"skipped {folder / 'sub'} (a subfolder: --recursive reads it)" in captured.err
    assert cli(["read", str(folder), "--model", str(tiny_weights), "--recursive", "--json"]) == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(["read", str(empty), "--model", str(tiny_weights)]) == 1
    assert "no image files" in capsys.readouterr().err
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(tiny_onnx.read_bytes()[:500])
    for model, backend in ((truncated, "onnx"), (tiny_weights, "onnx")):
        assert cli(["read", str(folder), "--model", str(model), "--backend", backend]) == 2
        err = capsys.readouterr().err
        assert err.startswith("captcha-ocr: cannot load the model") and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:
        cli(["read", str(folder), "--threads", "-1"])
    assert exit_info.value.code == 2


def test_read_command_into_a_closed_pipe_ends_quietly(tiny_weights: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(300):
        draw_captcha("226md").save(folder / f"{index:03d}.png")
    command = f"{sys.executable} -m captcha_ocr.cli read {folder} --model {tiny_weights} | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_shipped_model_reads_light_on_dark_and_shaded_copies_as_the_originals(real_data: Path, backend: str) -> None:
    from PIL import ImageOps

    from .test_preprocessing import shaded

    files = fold0_test_images(real_data)[:24]
    originals = [Image.open(f).convert("RGB") for f in files]
    reader = CaptchaReader(backend=backend)
    expected = [r.text for r in reader.read(originals)]
    assert sum(text == f.stem for text, f in zip(expected, files, strict=True)) >= 23
    for change in (ImageOps.invert, shaded, lambda image: ImageOps.invert(shaded(image))):
        assert [r.text for r in reader.read([change(image) for image in originals])] == expected


def test_allow_restricts_the_shipped_model_to_the_given_characters(real_data: Path, capsys) -> None:
    """Masking the characters of the right reading makes the model read others; allowing the
    right ones leaves the reading as it was. Torch and ONNX agree, and the CLI passes --allow on."""
    files = fold0_test_images(real_data)[:16]
    for backend in ("torch", "onnx"):
        reader = CaptchaReader(backend=backend)
        plain = reader.read(files)
        digits = reader.read(files, allow="0123456789")
        assert all(set(r.text) <= set("2345678") for r in digits)
        own = [reader.read([f], allow=r.text)[0] for f, r in zip(files[:4], plain[:4], strict=True)]
        assert [r.text for r in own] == [r.text for r in plain[:4]]
        assert all(o.confidence >= p.confidence - 1e-6 for o, p in zip(own, plain, strict=False))
        with_steps = reader.read(files[:2], distribution=True)
        assert len(with_steps[0].distribution) == reader.tokenizer.max_length
        assert len(with_steps[0].distribution[0]) == len(reader.classes)
        assert sum(with_steps[0].distribution[0]) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="none of the allowed characters"):
        reader.read(files, allow="AHQ")  # in neither case in the charset
    assert cli(["read", str(files[0]), "--allow", "2345678", "--json"]) in (0, 3)
    assert set(json.loads(capsys.readouterr().out)["text"]) <= set("2345678")
    assert cli(["read", str(files[0]), "--allow", "QZ"]) == 2
    assert "--allow: none of the allowed characters 'QZ'" in capsys.readouterr().err
