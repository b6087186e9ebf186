"""Fine-tuning starts: weights copied from a network of another charset and length, the shared
characters' rows of the head mapped, the others fresh."""

import json
import string

import pytest
import torch

from captcha_ocr.model.checkpoint import load_model
from captcha_ocr.model.network import CaptchaNet
from captcha_ocr.model.transfer import transfer_weights

from .helpers import model_spec, write_tiny_weights

SMALL = {"channels": (8, 8, 8), "lstm_hidden": 8, "head": "joint"}


def test_shared_characters_and_positions_are_mapped_the_rest_stay_fresh() -> None:
    torch.manual_seed(0)
    source_spec = model_spec(charset="abc", min_length=4, max_length=4, **SMALL)
    target_spec = model_spec(charset="bcd", min_length=5, max_length=5, **SMALL)
    source, target = CaptchaNet(source_spec), CaptchaNet(target_spec)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    copied = transfer_weights(source, source_spec, target, target_spec, head="map")
    assert torch.equal(target.stem[0].weight, source.stem[0].weight) and "rnn.weight_ih_l0" in copied
    position_source, position_target = source.head.position.weight, target.head.position.weight  # (L, dim, C)
    # class ids: 0 end / blank; source a=1 b=2 c=3; target b=1 c=2 d=3
    assert torch.equal(position_target[:4, :, [0, 1, 2]], position_source[:, :, [0, 2, 3]])
    assert torch.equal(position_target[4], fresh["head.position.weight"][4])  # a fifth position: fresh
    assert torch.equal(position_target[:, :, 3], fresh["head.position.weight"][:, :, 3])  # "d": fresh
    assert torch.equal(target.head.ctc.weight[[0, 1, 2]], source.head.ctc.weight[[0, 2, 3]])
    assert torch.equal(target.head.ctc.bias[3], fresh["head.ctc.bias"][3])


def test_reinit_keeps_the_backbone_and_starts_the_head_afresh() -> None:
    source_spec, target_spec = model_spec(charset="abc", **SMALL), model_spec(charset="xyz", **SMALL)
    source, target = CaptchaNet(source_spec), CaptchaNet(target_spec)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    copied = transfer_weights(source, source_spec, target, target_spec, head="reinit")
    assert not any(name.startswith("head.") for name in copied)
    assert all(torch.equal(v, fresh[k]) for k, v in target.state_dict().items() if k.startswith("head."))
    assert torch.equal(target.cnn[2][0].conv2.weight, source.cnn[2][0].conv2.weight)


def test_another_architecture_is_named() -> None:
    source_spec, target_spec = model_spec(**SMALL), model_spec(**{**SMALL, "lstm_hidden": 16})
    with pytest.raises(ValueError, match="lstm_hidden: 8 vs 16"):
        transfer_weights(CaptchaNet(source_spec), source_spec, CaptchaNet(target_spec), target_spec)


def test_the_system_starts_from_its_base_when_fitting_only(tmp_path) -> None:
    """``model.base``: the weights are copied at fit's setup (before a resumed checkpoint would be
    restored), not at test's; the shared characters' head rows come along."""
    from captcha_ocr.training.system import CaptchaSystem

    spec = model_spec(charset="abc", **SMALL)
    base = write_tiny_weights(tmp_path / "base.pt", spec=spec)
    source, _ = load_model(base)
    system = CaptchaSystem(charset="bcd", head="joint", channels=(8, 8, 8), lstm_hidden=8,
                           stem_stride=spec.stem_stride, strides=spec.strides, base=str(base))  # fmt: skip
    system.setup("test")
    assert not torch.equal(system.model.stem[0].weight, source.stem[0].weight)
    system.setup("fit")
    assert torch.equal(system.model.stem[0].weight, source.stem[0].weight)
    assert torch.equal(system.model.head.ctc.weight[[0, 1, 2]], source.head.ctc.weight[[0, 2, 3]])


def test_the_shipped_base_fits_the_recipe_it_starts() -> None:
    """``captcha-ocr train`` copies ``base`` into the recipe's network: the two must not drift apart."""
    import yaml

    from captcha_ocr.reading.weights import shipped_file
    from captcha_ocr.training.train import RECIPE

    _, spec = load_model(shipped_file("base", "torch"))
    recipe = yaml.safe_load(RECIPE.read_text())
    assert spec.charset == "".join(sorted(string.digits + string.ascii_letters)) and (
        spec.min_length,
        spec.max_length,
    ) == (4, 8)
    for name in ("head", "channels", "stem_stride", "strides", "lstm_hidden"):
        assert json.loads(json.dumps(getattr(spec, name))) == recipe["model"][name], name
    assert (spec.height, spec.width) == (recipe["data"]["height"], recipe["data"]["width"])
