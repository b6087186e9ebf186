"""The arithmetic answer of a reading: hand-computed values, any generated expression, and a clear
error (never an exception of another kind) for text that is not arithmetic."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captcha_ocr.reading.answers import arithmetic_answer


@pytest.mark.parametrize(
    ("text", "value"),
    [("12+7=?", 19), ("9x3=", 27), ("9x3-4=", 23), ("2+3x4", 14), ("7-10=?", -3), ("6*7", 42), ("6\u00d77=?", 42),
     ("0x5+1", 1), ("8 + 1 = ?", 9), ("8+1 =", 9)],
)  # fmt: skip
def test_hand_computed_values(text: str, value: int) -> None:
    assert arithmetic_answer(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("=?", "empty"), ("12+", "ends with an operator"), ("+12", "a number expected at 0"),
     ("12++3", "a number expected at 3"), ("12 3", "an operator expected at 3"), ("1/2", "unexpected '/' at 1"),
     ("__import__('os')", "unexpected '_' at 0"), ("2x3=?7", "unexpected '=' at 3"),
     ("1234567890+1", "a number of 10 digits"), ("7", "without an operator"), ("101118", "without an operator"),
     ("0120=", "without an operator")],
)  # fmt: skip
def test_malformed_expressions_are_a_clear_value_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="is not arithmetic") as error:
        arithmetic_answer(text)
    assert message in str(error.value)


def test_long_runs_of_spaces_are_parsed_in_linear_time() -> None:
    """A quadratic pattern would take minutes on these; a linear parser answers at once."""
    assert arithmetic_answer("1 +" + " " * 200_000 + "2 =" + " " * 200_000 + "?") == 3
    with pytest.raises(ValueError, match="is not arithmetic"):
        arithmetic_answer("1" + " " * 200_000 + "x")


@given(st.lists(st.integers(0, 99), min_size=2, max_size=4), st.data())
def test_any_expression_of_the_grammar_is_computed_with_products_first(numbers: list[int], data) -> None:
    operators = data.draw(st.lists(st.sampled_from("+-x"), min_size=len(numbers) - 1, max_size=len(numbers) - 1))
    text = "".join(f"{o}{n}" for o, n in zip(["", *operators], numbers, strict=True))
    expected = numbers[0]  # computed apart: fold the products, then add the terms with their signs
    terms = [(1, numbers[0])]
    for operator, number in zip(operators, numbers[1:], strict=True):
        if operator == "x":
            terms[-1] = (terms[-1][0], terms[-1][1] * number)
        else:
            terms.append((1 if operator == "+" else -1, number))
    expected = sum(sign * value for sign, value in terms)
    assert arithmetic_answer(text + "=?") == expected


def test_read_and_the_server_report_the_answer_or_why_there_is_none() -> None:
    import json
    from pathlib import Path

    from captcha_ocr.cli import format_reading
    from captcha_ocr.reading.answers import answer_record
    from captcha_ocr.reading.reader import Reading
    from captcha_ocr.serving.schemas import ImageReading

    sum_, word = Reading("12+7=?", 0.98, (0.99,) * 6), Reading("bcdef", 0.9, (0.98,) * 5)
    summed, worded = answer_record(sum_.text, "arithmetic"), answer_record(word.text, "arithmetic")
    line = json.loads(format_reading(Path("a.png"), sum_, as_json=True, with_status=False, answered=summed))
    assert line["answer"] == 19 and line["text"] == "12+7=?"
    assert format_reading(Path("a.png"), sum_, as_json=False, with_status=False, answered=summed).endswith("\t19")
    assert format_reading(Path("b.png"), word, as_json=False, with_status=True, answered=worded).endswith("\tok\t")
    missing = json.loads(format_reading(Path("b.png"), word, as_json=True, with_status=False, answered=worded))
    assert missing["answer"] is None and "not arithmetic" in missing["answer_error"]
    assert ImageReading.of(0, sum_, "arithmetic").answer == 19
    assert ImageReading.of(1, word, "arithmetic").answer_error.startswith("'bcdef' is not arithmetic")
    assert "answer" not in json.loads(format_reading(Path("a.png"), sum_, as_json=True, with_status=False))
