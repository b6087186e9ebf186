"""The model files that ``captcha-ocr train`` writes: replaced as a pair, never two runs mixed,
the old pair kept when a write fails, a stopped run reported as such."""

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.training import train

from .helpers import ROOT, draw_captcha, model_spec, random_labels

TINY = {"channels": (8, 16, 16), "lstm_hidden": 16}

# Writes model pairs of seed 1, 2, ... into argv[1] and says "<seed> saved" after each.
SAVING_LOOP = """
import sys
from pathlib import Path
import torch
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.training.train import save
from tests.helpers import model_spec
spec = model_spec(channels=(8, 16, 16), lstm_hidden=16)
for seed in range(1, 10_000):
    torch.manual_seed(seed)
    save(CaptchaNet(spec), spec, Path(sys.argv[1]))
    print(seed, "saved", flush=True)
"""


def logits_of_pair(out: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The logits of one fixed input by ``model.pt`` and by ``model.onnx`` (None if absent)."""
    images = torch.rand(2, 1, 32, 128, generator=torch.Generator().manual_seed(0))
    model, _ = load_model(out / "model.pt")
    with torch.no_grad():
        torch_logits = model.eval()(images).numpy()
    if not (out / "model.onnx").exists():
        return torch_logits, None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    return torch_logits, session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]


@pytest.mark.slow
def test_killed_at_20_points_of_writing_the_folder_holds_one_run_never_two(tmp_path: Path) -> None:
    rng = random.Random(0)
    for point in range(20):
        out = tmp_path / f"kill{point}"
        out.mkdir()
        child = subprocess.Popen([sys.executable, "-c", SAVING_LOOP, str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                                 text=True)  # fmt: skip
        assert child.stdout.readline().strip() == "1 saved"  # an old pair is in place
        time.sleep(rng.uniform(0.0, 1.5))  # then somewhere in the writing of later pairs
        child.send_signal(signal.SIGKILL)
        child.wait()
        torch_logits, onnx_logits = logits_of_pair(out)  # model.pt is always there, whole
        if onnx_logits is not None:
            np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)  # the same run's files
        assert {p.name for p in out.iterdir()} <= {"model.pt", "model.onnx", ".model.partial.pt",
                                                   ".model.partial.onnx"}  # fmt: skip


def test_a_full_disk_keeps_the_old_pair_and_names_the_failure(tmp_path: Path, monkeypatch) -> None:
    spec = model_spec(**TINY)
    torch.manual_seed(1)
    train.save(CaptchaNet(spec), spec, tmp_path)
    before = logits_of_pair(tmp_path)

    def no_space(*args, **kwargs) -> None:
        Path(args[-1]).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(train, "save_model", no_space)
    with pytest.raises(OSError, match=r"No space left on device.*previous model there is kept"):
        train.save(CaptchaNet(spec), spec, tmp_path)
    after = logits_of_pair(tmp_path)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.pt"]


@pytest.mark.slow
def test_sigterm_during_train_exits_non_zero_in_one_line_and_writes_no_model(tmp_path: Path) -> None:
    folder = tmp_path / "captchas"
    folder.mkdir()
    for label in random_labels(12):
        draw_captcha(label).save(folder / f"{label}.png")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "captcha_ocr.cli", "train", str(folder), "--out", str(out), "--folds", "0",
               "--steps", "100000", "--from-scratch"]  # fmt: skip
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*/version_*")) and time.monotonic() < deadline:  # its logger: training has begun
        time.sleep(0.2)
    time.sleep(2)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM
    assert stderr.strip().splitlines()[-1].startswith("captcha-ocr: train stopped by SIGTERM")
    assert not any(noise in stderr for noise in ("GPU available", "LitLogger", "deprecated", "Seed set"))
    assert not (out / "model.pt").exists() and not (out / "model.onnx").exists()
