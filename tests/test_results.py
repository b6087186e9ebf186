"""Result records: per-image rows round trip, runs files append and summarise by hand-computed numbers."""

import math
from pathlib import Path

from captcha_ocr.analysis.results import (
    IMAGE_COLUMNS,
    RUN_COLUMNS,
    ImageResult,
    append_rows,
    markdown_table,
    mean_std,
    read_image_results,
    read_rows,
    write_image_results,
)


def run(fold: int, test_cer: float, seconds: float) -> dict:
    values = {"test_whole_acc": 1 - 5 * test_cer, "test_char_acc": 1 - test_cer, "val_cer": 0.0}
    return {column: 0 for column in RUN_COLUMNS} | values | {
        "config": "crnn", "fold": fold, "seed": 0, "test_cer": test_cer, "train_seconds": seconds,
        "seconds_per_epoch": seconds / 40, "params": 660_000, "epochs": 40,
    }  # fmt: skip


def test_image_results_round_trip_through_csv(tmp_path: Path) -> None:
    results = [
        ImageResult("226md.png", "226md", "226md", 0.01, 0.99, [0.99] * 5, fold=0, seed=1, config="crnn"),
        ImageResult("x.png", "", "2b827", math.nan, 0.5, [0.9, 0.8, 0.7, 0.9, 0.95]),  # unlabelled
    ]
    write_image_results(tmp_path / "images.csv", results)
    assert read_rows(tmp_path / "images.csv")[0].keys() == set(IMAGE_COLUMNS)
    back = read_image_results(tmp_path / "images.csv")
    assert back[0] == results[0]
    assert back[1].file == "x.png" and math.isnan(back[1].loss) and back[1].fold is None
    assert back[1].characters == results[1].characters


def test_runs_table_shows_mean_and_std_over_runs(tmp_path: Path) -> None:
    path = tmp_path / "crnn_cv.csv"
    append_rows(path, RUN_COLUMNS, [run(0, 0.001, 300.0)])
    append_rows(path, RUN_COLUMNS, [run(1, 0.003, 340.0)])  # appending keeps one header
    assert len(read_rows(path)) == 2
    table = markdown_table([path, tmp_path / "missing_cv.csv"]).splitlines()
    assert len(table) == 3  # header, separator, one row; a missing file adds nothing
    cells = [cell.strip() for cell in table[2].strip("|").split("|")]
    # test CER 0.1 % and 0.3 %: mean 0.2, sample std 0.1414; whole-captcha 99.5 % and 98.5 %
    assert cells[:6] == ["crnn", "2", "0.200 ± 0.141", "99.00 ± 0.71", "99.80 ± 0.14", "0.300"]
    assert cells[-2:] == ["320 ± 28", "8.0 ± 0.7"]


def test_one_value_has_no_spread_and_older_files_keep_their_columns(tmp_path: Path) -> None:
    assert mean_std([0.5], scale=100, digits=1) == "50.0"
    path = tmp_path / "old_oof.csv"
    path.write_text("config,fold,seed,file,label,prediction,confidence,loss\n")
    append_rows(path, IMAGE_COLUMNS, [ImageResult("a.png", "abcde", "abcde", 0.1, 0.9, [0.9] * 5).row()])
    assert read_rows(path)[0]["text"] == "abcde" and "characters" not in read_rows(path)[0]
    # the file written under the old name of the reading is rewritten under today's
    assert path.read_text().splitlines()[0] == "config,fold,seed,file,label,text,confidence,loss"


def test_runs_files_written_before_the_rename_are_read_under_todays_names(tmp_path: Path) -> None:
    path = tmp_path / "old_cv.csv"
    path.write_text("config,fold,seed,test_seq_acc,seq_acc_mean,whole,estimate_whole\ncrnn,0,0,0.99,0.9,0.8,0.7\n")
    (row,) = read_rows(path)
    assert row == {"config": "crnn", "fold": "0", "seed": "0", "test_whole_acc": "0.99", "whole_acc_mean": "0.9",
                   "whole_acc": "0.8", "estimate_whole_acc": "0.7"}  # fmt: skip
