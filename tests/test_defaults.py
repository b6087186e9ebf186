"""Each default in one place: the code's defaults are the recipe's (``configs/crnn.yaml``), and
the command line's defaults and choices are the library functions' own."""

import inspect
from collections.abc import Callable
from typing import get_args

import pytest
import torch
import yaml

from captcha_ocr.cli import build_parser
from captcha_ocr.data.datamodule import CaptchaDataModule
from captcha_ocr.data.synth import Drawing, Kind, synthesize
from captcha_ocr.model.transfer import HeadInit
from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.training.crossval import cross_validate
from captcha_ocr.training.evaluation import report_results
from captcha_ocr.training.system import CaptchaSystem
from captcha_ocr.training.train import train_folder

from .helpers import ROOT

RECIPE = yaml.safe_load((ROOT / "configs" / "crnn.yaml").read_text())
# What the recipe sets that a signature cannot hold: the policy's modules, the data set's place
# and size (the code defaults to where `make train` puts it, and checks no count).
RECIPE_ONLY = {"augmentations", "data_dir", "expected_files"}


def defaults(function: Callable) -> dict:
    return {name: p.default for name, p in inspect.signature(function).parameters.items() if p.default is not p.empty}


def plain(value: object) -> object:
    """Tuples as the lists YAML gives."""
    return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value


@pytest.mark.parametrize(("section", "cls"), [("model", CaptchaSystem), ("data", CaptchaDataModule)])
def test_the_code_defaults_are_the_recipe(section: str, cls: type) -> None:
    code = defaults(cls.__init__)
    recipe = {key: value for key, value in RECIPE[section].items() if key not in RECIPE_ONLY | {"optimizer"}}
    assert {key: plain(code[key]) for key in recipe} == recipe


def test_the_default_optimizer_is_the_recipe() -> None:
    optimizer = defaults(CaptchaSystem.__init__)["optimizer"]([torch.nn.Parameter(torch.zeros(1))])
    recipe = RECIPE["model"]["optimizer"]
    assert f"{type(optimizer).__module__}.{type(optimizer).__name__}".replace(".adamw", "") == recipe["class_path"]
    assert {key: optimizer.defaults[key] for key in recipe["init_args"]} == recipe["init_args"]


def test_a_model_built_without_a_config_is_the_recipe() -> None:
    """``python main.py fit`` without ``--config`` trains the network the README describes."""
    assert CaptchaSystem().model.spec == CaptchaSystem(**{k: v for k, v in RECIPE["model"].items()
                                                          if k != "optimizer"}).model.spec  # fmt: skip


def test_command_line_defaults_are_the_functions() -> None:
    parser = build_parser()
    checks = [
        (["train", "folder"], train_folder, {"steps": "steps", "folds": "folds", "seed": "seed", "base": "base",
                                             "head": "head", "rounds": "rounds"}),
        (["cv"], cross_validate, {"folds": "folds", "seeds": "seeds", "out": "out"}),
        (["synth", "--count", "3", "--out", "x"], synthesize,
         {name: name for name in ("seed", "width", "height", "kind", "style", "workers")}),
        (["report", "--predictions", "p.csv", "--data-dir", "d", "--out", "o"], report_results, {"part": "part"}),
        (["read", "x.png"], CaptchaReader.__init__, {"batch_size": "batch_size", "min_confidence": "min_confidence",
                                                     "max_pixels": "max_pixels"}),
    ]  # fmt: skip
    for argv, function, names in checks:
        args, own = vars(parser.parse_args(argv)), defaults(function)
        assert {flag: plain(args[flag]) for flag in names} == {flag: plain(own[name]) for flag, name in names.items()}


def test_command_line_choices_are_the_functions() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    choices = {(command, action.dest): tuple(action.choices) for command, sub in commands.items()
               for action in sub._actions if action.choices}  # fmt: skip
    assert choices[("train", "head")] == get_args(HeadInit)
    assert choices[("synth", "kind")] == get_args(Kind)
    assert choices[("synth", "style")] == get_args(Drawing)


def test_one_augmentation_policy_the_configs(tmp_path) -> None:
    """The config's modules in order, or none; the configs that set one build it."""
    import kornia.augmentation as K

    assert CaptchaDataModule(str(tmp_path)).augmentation is None
    gamma = K.RandomGamma((0.5, 2.0))
    assert list(CaptchaDataModule(str(tmp_path), augmentations=[gamma]).augmentation) == [gamma]
    assert "max_shift" not in inspect.signature(CaptchaDataModule.__init__).parameters


@pytest.mark.parametrize(
    ("configs", "first", "count"),
    [
        (["synthetic.yaml"], "RandomAffine", 4),
        (["crnn.yaml", "ablations/lines.yaml"], "RandomAffine", 2),
        (["crnn.yaml", "ablations/no_augment.yaml"], None, 0),
    ],
)
def test_configs_build_their_policy(configs: list[str], first: str | None, count: int) -> None:
    from captcha_ocr.training.lightning_cli import CaptchaCLI

    args = [a for c in configs for a in ("--config", str(ROOT / "configs" / c))] + ["--trainer.logger=false"]
    policy = CaptchaCLI(args=args, run=False).datamodule.augmentation
    assert len(policy or []) == count
    assert policy is None or type(policy[0]).__name__ == first
