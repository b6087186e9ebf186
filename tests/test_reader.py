import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from captcha_ocr.checkpoint import load_model
from captcha_ocr.cli import main as cli
from captcha_ocr.export import export_onnx
from captcha_ocr.reader import CaptchaReader

from .conftest import draw_captcha, write_tiny_weights


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
    with pytest.raises(ValueError, match="not a captcha_ocr checkpoint"):
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


def test_onnx_backend_runs_without_torch(tiny_onnx: Path) -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
        "from captcha_ocr.reader import CaptchaReader\n"
        "from PIL import Image\n"
        f"reader = CaptchaReader({str(tiny_onnx)!r}, backend='onnx')\n"
        "print(reader.read([Image.new('L', (200, 50), 255)])[0].text != None)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def fold0_test_images(real_data: Path) -> list[Path]:
    from captcha_ocr.data.dataset import list_image_files
    from captcha_ocr.data.split import fold_split

    files = list_image_files(real_data)
    return [files[i] for i in fold_split(len(files), fold=0).test]


def test_shipped_model_reads_its_test_fold(real_data: Path) -> None:
    files = fold0_test_images(real_data)
    readings = CaptchaReader().read(files)
    wrong = [(f.stem, r.text) for f, r in zip(files, readings, strict=True) if f.stem != r.text]
    assert len(files) == 208
    assert len(wrong) <= 2, wrong  # results/crnn_cv.csv, fold 0: one wrong character


def test_shipped_onnx_matches_shipped_torch_on_real_images(real_data: Path) -> None:
    torch_reader, onnx_reader = CaptchaReader(), CaptchaReader(backend="onnx")
    batch = np.stack([torch_reader.preprocess(f) for f in fold0_test_images(real_data)[:64]])
    np.testing.assert_allclose(onnx_reader.logits(batch), torch_reader.logits(batch), atol=1e-4)
    assert [r.text for r in onnx_reader.read_arrays(batch)] == [r.text for r in torch_reader.read_arrays(batch)]
