"""What a captcha asks for, computed from its reading: the value of an arithmetic captcha
(``12+7=?`` → 19). A small parser of its own; nothing a reading holds is ever evaluated as code.

    >>> arithmetic_answer("12+7=?")
    19
    >>> arithmetic_answer("9x3-4=")
    23
"""

import re
from collections.abc import Callable

TOKEN = re.compile(r"\s*(?:(\d+)|([-+x*\u00d7]))")
MAX_DIGITS = 9  # numbers of a captcha are short; a longer one is a misreading, not a number


def arithmetic_answer(text: str) -> int:
    """The value of an expression of non-negative integers joined by ``+``, ``-`` and ``x`` (also
    ``*`` or the multiplication sign U+00D7), multiplication first, optionally followed by ``=`` and
    ``?``; at least one operator (a lone number is a misread captcha, not a sum). Linear in the
    length of the text.

    Raises:
        ValueError: The text is not such an expression, saying where it stops being one.
    """
    body = text.strip()
    for ending in ("?", "="):  # "12+7=?", "12+7=", "12+7 = ?"
        body = body.removesuffix(ending).rstrip()
    numbers: list[int] = []
    operators: list[str] = []
    position = 0
    while position < len(body):
        match = TOKEN.match(body, position)
        if match is None:
            raise ValueError(f"{text!r} is not arithmetic: unexpected {body[position : position + 1]!r} at {position}")
        number, operator = match.groups()
        expects_number = len(numbers) == len(operators)
        if expects_number != (number is not None):
            wanted = "a number" if expects_number else "an operator"
            raise ValueError(f"{text!r} is not arithmetic: {wanted} expected at {match.start(1 if number else 2)}")
        if number is not None:
            if len(number) > MAX_DIGITS:
                raise ValueError(f"{text!r} is not arithmetic: a number of {len(number)} digits")
            numbers.append(int(number))
        else:
            operators.append("x" if operator in "*\u00d7" else operator)
        position = match.end()
    if not numbers or len(numbers) == len(operators):
        raise ValueError(f"{text!r} is not arithmetic: {'empty' if not numbers else 'it ends with an operator'}")
    if not operators:
        raise ValueError(f"{text!r} is not arithmetic: a number without an operator")
    return _evaluate(numbers, operators)


def _evaluate(numbers: list[int], operators: list[str]) -> int:
    """Products first, then sums and differences from left to right."""
    terms, signs = [numbers[0]], []
    for operator, number in zip(operators, numbers[1:], strict=True):
        if operator == "x":
            terms[-1] *= number
        else:
            terms.append(number)
            signs.append(operator)
    total = terms[0]
    for sign, term in zip(signs, terms[1:], strict=True):
        total = total + term if sign == "+" else total - term
    return total


ANSWERS: dict[str, Callable[[str], int]] = {"arithmetic": arithmetic_answer}  # --answer NAME


def answer_record(text: str, kind: str) -> dict:
    """``{"answer": value}`` of a reading, or ``{"answer": None, "answer_error": why}`` when the
    reading is not what ``kind`` (a key of ``ANSWERS``) parses: the CLI's and the server's field."""
    try:
        return {"answer": ANSWERS[kind](text)}
    except ValueError as error:
        return {"answer": None, "answer_error": str(error)}
