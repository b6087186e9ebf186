"""Reading under a length constraint: each head's decoder on hand-computed probabilities, and the
``length`` option of the reader, the CLI and the server."""

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from captcha_ocr.cli import main
from captcha_ocr.reading.decoding import CTCDecoder, JointDecoder, PositionDecoder
from captcha_ocr.reading.reader import CaptchaReader, parse_length
from captcha_ocr.reading.tokenizer import Tokenizer
from captcha_ocr.serving.app import create_app

from .helpers import draw_captcha, model_spec, write_tiny_weights

TOKENIZER = Tokenizer("ab", 1, 3)  # classes: end / blank, a, b
# Position head: the greedy reading is "a" (0.6 x end 0.5 = 0.3).
POSITION = np.log([[[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.8, 0.05, 0.15]]])  # (1, L=3, C=3)
# CTC head: the greedy path is three blanks, "" (0.5 x 0.6 x 0.5).
CTC = np.log([[[0.5, 0.45, 0.05], [0.6, 0.3, 0.1], [0.5, 0.1, 0.4]]])  # (1, T=3, C=3)


@pytest.mark.parametrize(
    ("lengths", "text", "confidence"),
    [
        (None, "a", 0.6 * 0.5),
        ([2], "ab", 0.6 * 0.3 * 0.8),  # a, b, then the end class
        ([3], "abb", 0.6 * 0.3 * 0.15),  # no end class after the last position
        ([2, 3], "ab", 0.6 * 0.3 * 0.8),  # 0.144 beats 0.027
        ([1, 3], "a", 0.6 * 0.5),
    ],
)
def test_position_head_reads_its_best_text_of_an_allowed_length(lengths, text, confidence) -> None:
    decoded = PositionDecoder(TOKENIZER).read_constrained(POSITION, lengths)
    assert decoded.texts == [text]
    assert decoded.confidences[0] == pytest.approx(confidence)
    assert decoded.fits.tolist() == [True]
    assert len(decoded.characters[0]) == len(text)


@pytest.mark.parametrize(
    ("lengths", "text", "confidence"),
    [
        (None, "", 1.0),  # no character: the product of none
        ([1], "a", 0.45),  # path a - - (0.135) beats - - b (0.12)
        ([2], "ab", 0.45 * 0.4),  # path a - b (0.108)
        ([3], "bab", 0.05 * 0.3 * 0.4),  # the only kind of path with three runs in three steps
        ([1, 2], "a", 0.45),
    ],
)
def test_ctc_head_reads_its_best_path_of_an_allowed_length(lengths, text, confidence) -> None:
    decoded = CTCDecoder(TOKENIZER).read_constrained(CTC, lengths)
    assert decoded.texts == [text]
    assert decoded.confidences[0] == pytest.approx(confidence)


def test_ctc_constraint_finds_the_best_path_among_all_paths() -> None:
    """Against brute force over every path of 5 steps, for random outputs and lengths."""
    rng = np.random.default_rng(0)
    decoder = CTCDecoder(TOKENIZER)

    def collapse(path: tuple[int, ...]) -> str:
        kept = [c for t, c in enumerate(path) if c and (t == 0 or c != path[t - 1])]
        return "".join("ab"[c - 1] for c in kept)

    paths = np.array(np.meshgrid(*[range(3)] * 5, indexing="ij")).reshape(5, -1).T  # (243, 5)
    texts = [collapse(tuple(path)) for path in paths.tolist()]
    for _ in range(30):
        log_probs = np.log(rng.dirichlet(np.ones(3), size=(1, 5)))  # (1, T=5, C=3)
        scores = log_probs[0, np.arange(5), paths].sum(axis=1)  # (243,)
        for lengths in ([1], [2], [3], [2, 4]):
            best = max((s, t) for s, t in zip(scores, texts, strict=True) if len(t) in lengths)[1]
            assert decoder.read_constrained(log_probs, lengths).texts == [best]


def test_a_length_no_step_fits_is_rejected_not_guessed() -> None:
    position = PositionDecoder(TOKENIZER).read_constrained(POSITION, [4])  # 3 positions
    ctc = CTCDecoder(TOKENIZER).read_constrained(CTC, [4])  # 3 time steps
    for decoded in (position, ctc):
        assert decoded.texts == [""]
        assert decoded.fits.tolist() == [False]
        assert decoded.confidences.tolist() == [0.0]


def test_joint_head_reads_with_the_position_head_and_checks_with_ctc() -> None:
    logits = np.concatenate([POSITION, CTC], axis=1)  # (1, L + T, C)
    decoded = JointDecoder(TOKENIZER).read_constrained(logits, [2])
    # CTC's probability of "ab" over every alignment: a-b, aab, abb, -ab
    ctc_ab = 0.45 * 0.6 * 0.4 + 0.45 * 0.3 * 0.4 + 0.45 * 0.1 * 0.4 + 0.5 * 0.3 * 0.4
    assert decoded.texts == ["ab"]
    assert decoded.confidences[0] == pytest.approx(min(0.6 * 0.3 * 0.8, ctc_ab))


@pytest.mark.parametrize(
    ("value", "parsed"), [(None, None), ("", None), (5, 5), ("5", 5), (" 4-6 ", (4, 6)), ([4, 6], (4, 6))]
)
def test_parse_length(value, parsed) -> None:
    assert parse_length(value) == parsed


@pytest.mark.parametrize("value", ["x", "4-", "-4", True, 4.5, [4], ["4", "6"], "1234"])
def test_parse_length_refuses_what_is_not_a_length(value) -> None:
    with pytest.raises(ValueError, match="length must be"):
        parse_length(value)


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> CaptchaReader:
    spec = model_spec(min_length=3, max_length=6)
    return CaptchaReader(write_tiny_weights(tmp_path_factory.mktemp("model") / "tiny.pt", spec=spec))


def test_reader_reads_the_trained_lengths_by_default_and_any_asked_for(reader: CaptchaReader) -> None:
    assert reader.lengths() == range(3, 7)
    image = draw_captcha("2b8d")
    assert 3 <= len(reader.read([image])[0].text) <= 6
    for length in (3, 5, 6):
        assert len(reader.read([image], length=length)[0].text) == length
    assert 4 <= len(reader.read([image], length=(4, 5))[0].text) <= 5


@pytest.mark.parametrize("length", [0, (5, 4), 7])
def test_reader_refuses_a_length_it_cannot_read(reader: CaptchaReader, length) -> None:
    with pytest.raises(ValueError, match="length"):
        reader.read([draw_captcha("2b8d")], length=length)


def test_server_reads_under_length_on_every_route(reader: CaptchaReader) -> None:
    buffer = io.BytesIO()
    draw_captcha("2b8d").save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    with TestClient(create_app(reader, "tiny")) as client:
        native = client.post("/v1/read?length=5", json={"images": [image]}).json()
        assert len(native["results"][0]["text"]) == 5
        form = client.post("/ocr", data={"image": image, "length": "3"}).json()
        assert form["code"] == 200 and len(form["data"]) == 3
        answer = client.post("/ocr", json={"image": image, "length": [6, 6]}).json()
        assert answer["success"] and len(answer["data"]["text"]) == 6
        batch = client.post("/ocr/batch", json={"images": [image, image], "length": 4}).json()
        assert [len(d["text"]) for d in batch["data"]] == [4, 4]
        assert client.post("/v1/read?length=9", json={"images": [image]}).status_code == 422
        assert client.post("/ocr", data={"image": image, "length": "x"}).json()["code"] == 422
        assert client.post("/ocr", json={"image": image, "length": "4-3"}).status_code == 422


def test_cli_read_takes_length(reader: CaptchaReader, tmp_path, capsys) -> None:
    path = tmp_path / "x.png"
    draw_captcha("2b8d").save(path)
    model = tmp_path / "tiny.pt"
    write_tiny_weights(model, spec=model_spec(min_length=3, max_length=6))
    assert main(["read", str(path), "--model", str(model), "--length", "4"]) == 0
    assert len(capsys.readouterr().out.split("\t")[1]) == 4
    assert main(["read", str(path), "--model", str(model), "--length", "7"]) == 2
    assert "--length" in capsys.readouterr().err
