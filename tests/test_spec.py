"""The model description that every layer reads: its head table, its geometry, old files' specs."""

from typing import get_args

import pytest

from captcha_ocr.model.heads import HEAD_LAYERS
from captcha_ocr.reading.decoding import CTCDecoder, JointDecoder, PositionDecoder
from captcha_ocr.reading.spec import HEADS, Head, ModelSpec

from .helpers import model_spec


def test_every_head_has_a_decoder_and_layers_under_the_same_name() -> None:
    assert tuple(HEADS) == get_args(Head) == tuple(HEAD_LAYERS)
    decoders = {name: type(model_spec(head=name).decoder()) for name in HEADS}
    assert decoders == {"position": PositionDecoder, "ctc": CTCDecoder, "joint": JointDecoder}


def test_an_unknown_head_or_a_stride_missing_is_refused_when_the_spec_is_made() -> None:
    with pytest.raises(ValueError, match="unknown head 'attention'; known: position, ctc, joint"):
        model_spec(head="attention")
    with pytest.raises(ValueError, match="one stride per stage: 3 channels, 2 strides"):
        model_spec(strides=((2, 2), (2, 2)))


@pytest.mark.parametrize(("head", "steps"), [("position", 6), ("ctc", 32), ("joint", 38)])
def test_output_steps_follow_the_strides(head: str, steps: int) -> None:
    # width 128: stem stride 2 -> 64, stages 1, 2, 1 -> 64, 32, 32 columns; rows 32 -> 16 -> 16 -> 8 -> 4
    spec = model_spec(head=head, max_length=6, stem_stride=(2, 2), strides=((1, 1), (2, 2), (2, 1)))
    assert spec.feature_map_size() == (4, 32)
    assert spec.output_steps() == steps


def test_a_spec_from_an_older_file_takes_the_values_those_models_were_made_with() -> None:
    stored = model_spec().to_dict()
    for key in ("crop_to_text", "normalize", "stem_stride", "ctc_weight", "flatten_height"):
        del stored[key]
    spec = ModelSpec.from_dict({**stored, "channels": [32, 64, 128], "strides": [[2, 2], [2, 2], [2, 1]], "lr": 3e-3})
    assert (spec.crop_to_text, spec.normalize, spec.stem_stride) == (False, False, (1, 1))
    assert spec.strides == ((2, 2), (2, 2), (2, 1)) and spec.channels == (32, 64, 128)  # lists from JSON / YAML
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    del stored["charset"]
    with pytest.raises(KeyError, match="charset"):
        ModelSpec.from_dict(stored)


def test_the_graph_check_names_the_first_dimension_that_does_not_fit() -> None:
    spec = model_spec(head="ctc")  # 32 x 128, strides of 4 in width: 32 steps; 19 characters: 20 classes
    spec.check_graph(["batch", 1, 32, 128], ["batch", 32, 20])
    spec.check_graph(["batch", 1, "h", "w"], ["batch", "steps", 20])  # symbolic dimensions pass
    with pytest.raises(ValueError, match="input width: the graph has 100, the spec says 128"):
        spec.check_graph(["batch", 1, 32, 100], ["batch", 32, 20])
    with pytest.raises(ValueError, match="output classes"):
        spec.check_graph(["batch", 1, 32, 128], ["batch", 32, 37])
