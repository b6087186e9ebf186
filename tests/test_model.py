from dataclasses import replace

import pytest
import torch

from captcha_ocr.model.network import CaptchaNet

from .helpers import model_spec


@pytest.mark.parametrize("head", ["position", "ctc", "joint"])
@pytest.mark.parametrize("size", [(32, 128), (50, 200)])
def test_output_shapes(head: str, size: tuple[int, int]) -> None:
    model = CaptchaNet(model_spec(charset="abcdefghijklmnopqrs", head=head))  # 19 characters + pad: 20 classes
    logits = model(torch.rand(3, 1, *size))
    steps = {"position": 5, "ctc": size[1] // 4, "joint": 5 + size[1] // 4}  # two width strides of 2
    assert logits.shape == (3, steps[head], 20)


@pytest.mark.parametrize("head", ["ctc", "joint"])
def test_a_strided_stem_gives_the_same_sequence_and_the_onnx_check_agrees(head: str) -> None:
    """Moving the first stride into the stem (configs/crnn.yaml) keeps the output's time steps:
    the network, the spec's geometry and its ONNX graph check agree on them."""
    for stem, stages in [((1, 1), ((2, 2), (2, 2), (2, 1))), ((2, 2), ((1, 1), (2, 2), (2, 1)))]:
        spec = model_spec(head=head, stem_stride=stem, strides=stages, height=50, width=200)
        logits = CaptchaNet(spec)(torch.rand(2, 1, 50, 200))
        assert spec.feature_map_size() == (7, 50)  # 50 -> 25 -> 13 -> 7 rows; 200 -> 100 -> 50 columns
        assert logits.shape[1] == spec.output_steps() == {"ctc": 50, "joint": 5 + 50}[head]
        spec.check_graph([None, 1, 50, 200], list(logits.shape))
    with pytest.raises(ValueError, match="output steps"):
        replace(spec, stem_stride=(1, 1)).check_graph([None, 1, 50, 200], list(logits.shape))


def test_joint_loss_is_the_position_loss_plus_the_weighted_ctc_loss() -> None:
    from captcha_ocr.model.heads import CTCHead, PositionHead
    from captcha_ocr.reading.tokenizer import Tokenizer

    targets = torch.from_numpy(Tokenizer().encode(["226md", "bcdef"]))
    for weight in (0.2, 1.0):
        model = CaptchaNet(model_spec(head="joint", ctc_weight=weight))
        logits = model(torch.rand(2, 1, 32, 128))  # (B, 5 + 32, C)
        position = PositionHead.loss(logits[:, :5], targets, 0, "none")
        ctc = CTCHead.loss(logits[:, 5:], targets, 0, "none")
        torch.testing.assert_close(model.head.loss(logits, targets, 0, "none"), position + weight * ctc)
        torch.testing.assert_close(model.head.loss(logits, targets, 0), (position + weight * ctc).mean())


def test_stacked_lstm_layers_and_flattened_rows_keep_the_output_shape() -> None:
    for model in (CaptchaNet(model_spec(lstm_layers=2)), CaptchaNet(model_spec(flatten_height=True))):
        assert model(torch.rand(2, 1, 32, 128)).shape == (2, 5, 20)
    assert CaptchaNet(model_spec(lstm_layers=2)).rnn.num_layers == 2


def test_unknown_head_is_named() -> None:
    with pytest.raises(ValueError, match="unknown head 'attention'"):
        CaptchaNet(model_spec(head="attention"))


def test_channels_and_strides_must_pair() -> None:
    with pytest.raises(ValueError, match="one stride per stage"):
        CaptchaNet(model_spec(channels=(16, 32), strides=((2, 2),)))


@pytest.mark.slow
def test_a_tiny_ctc_model_leaves_the_all_blank_output() -> None:
    """CTC's easy optimum is all blanks; with the blank-first start and the rows of the feature
    map in the sequence, a small model on drawn captchas reads characters within 160 steps
    (with the mean over height and a neutral start it still outputs nothing at 200)."""
    import numpy as np

    from captcha_ocr.model.heads import CTCHead
    from captcha_ocr.reading.decoding import CTCDecoder
    from captcha_ocr.reading.images import load_image
    from captcha_ocr.reading.tokenizer import Tokenizer

    from .helpers import draw_captcha, random_labels

    tokenizer = Tokenizer()
    labels = random_labels(64, seed=1)
    images = torch.from_numpy(np.stack([load_image(draw_captcha(label), 32, 128) for label in labels])).float() / 255
    targets = torch.from_numpy(tokenizer.encode(labels))
    torch.manual_seed(0)
    model = CaptchaNet(model_spec(head="ctc", channels=(16, 32, 32), lstm_hidden=32, flatten_height=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(160):
        chosen = torch.randperm(len(labels))[:16]
        loss = CTCHead.loss(model(images[chosen]), targets[chosen], tokenizer.pad_id)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        texts, _ = CTCDecoder(tokenizer).decode(model(images).numpy())
    assert sum(len(text) > 0 for text in texts) >= 48  # most images read as something, not blank
