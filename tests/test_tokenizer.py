import pytest
import torch

from captcha_ocr.reading.tokenizer import Tokenizer


@pytest.mark.parametrize("labels", [["226md"], ["2345y", "nnnnn", "bcdef"]])
def test_encode_decode_round_trip(labels: list[str]) -> None:
    tokenizer = Tokenizer()
    encoded = tokenizer.encode(labels)
    assert encoded.shape == (len(labels), 5)
    assert tokenizer.decode(encoded) == labels


def test_ids_follow_charset_order_and_zero_is_reserved() -> None:
    tokenizer = Tokenizer("abc", 1, 3)
    assert tokenizer.num_classes == 4
    assert tokenizer.encode(["cab", "b"]).tolist() == [[3, 1, 2], [2, 0, 0]]
    assert tokenizer.decode(torch.tensor([[3, 1, 2], [2, 0, 3]])) == ["cab", "b"]


@pytest.mark.parametrize(
    ("label", "message"),
    [("226mA", "'A'"), ("22 md", "' '"), ("226m", "has 4 characters, expected 5"), ("226mdd", "has 6 characters")],
)
def test_encode_rejects_bad_labels_naming_the_problem(label: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tokenizer().encode([label])


@pytest.mark.parametrize(("charset", "lengths"), [("", (5, 5)), ("abca", (5, 5)), ("abc", (3, 2)), ("abc", (0, 2))])
def test_invalid_tokenizer_settings(charset: str, lengths: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        Tokenizer(charset, *lengths)


def test_allowed_characters_fold_case_only_for_a_one_case_charset() -> None:
    upper = Tokenizer("0123ABC", 4, 4)
    assert upper.one_case and upper.allowed_characters("ab1") == {"A", "B", "1"}
    assert upper.masked_kinds("0123") == ["letters"] and upper.masked_kinds("xyzA") == ["digits"]
    assert upper.masked_kinds("a0") == []
    mixed = Tokenizer("0aB", 3, 3)
    assert not mixed.one_case and mixed.allowed_characters("AB") == {"B"}
    assert Tokenizer("0123", 4, 4).masked_kinds("01") == []  # no letters to lose
