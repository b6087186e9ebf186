"""The error-analysis notebook runs from top to bottom on data made here."""

import csv
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from captcha_ocr.analysis.results import IMAGE_COLUMNS, RUN_COLUMNS

from .helpers import draw_captcha, write_tiny_weights

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "error_analysis.ipynb"


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.slow
def test_error_analysis_notebook_executes(tmp_path: Path, monkeypatch) -> None:
    images = tmp_path / "images"
    images.mkdir()
    readings = {"226md": "226md", "ep85x": "cp85x", "nnn2b": "nnm2b", "bcdef": "bcdef"}
    for label in readings:
        draw_captcha(label).save(images / f"{label}.png")
    write_csv(tmp_path / "oof.csv", IMAGE_COLUMNS, [
        {"config": "crnn", "fold": i % 2, "seed": 0, "file": f"{label}.png", "label": label, "text": text,
         "confidence": 0.9, "loss": 0.1 if label == text else 1.5}
        for i, (label, text) in enumerate(readings.items())
    ])  # fmt: skip
    results = tmp_path / "results"
    results.mkdir()
    runs = [
        {column: 0.01 for column in RUN_COLUMNS}
        | {"config": "crnn", "fold": fold, "seed": 0, "params": 1000, "epochs": 2}
        for fold in (0, 1)
    ]
    write_csv(results / "crnn_cv.csv", RUN_COLUMNS, runs)
    write_tiny_weights(tmp_path / "tiny.pt")
    for name, value in (("CAPTCHA_OOF", tmp_path / "oof.csv"), ("CAPTCHA_DATA", images),
                        ("CAPTCHA_RESULTS", results), ("CAPTCHA_MODEL", tmp_path / "tiny.pt")):  # fmt: skip
        monkeypatch.setenv(name, str(value))

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "**4 test predictions**" in text and "2 images wrong" in text
    assert "| 1 | ep85x.png | `ep85x` | `cp85x` |" in text
    # worst images, confusions, error rates, perturbed images
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 4
