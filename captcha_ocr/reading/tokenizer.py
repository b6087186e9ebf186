"""Every mapping between captcha text and class ids lives here (numpy only, no torch)."""

from collections.abc import Sequence
from typing import Protocol

import numpy as np

DEFAULT_CHARSET = "2345678bcdefgmnpwxy"


class IdRows(Protocol):
    """Rows of ids (B, L): a numpy array or a torch tensor."""

    def tolist(self) -> list: ...


class Tokenizer:
    """Maps labels to fixed-size id tensors and model outputs back to strings.

    Id 0 is reserved: it is the padding / end class of the per-position head (a label shorter
    than ``max_length`` is padded with it) and the blank of the CTC head. Characters take ids
    ``1..len(charset)``.

    Args:
        charset: The characters a label may contain, each once.
        min_length: Shortest allowed label.
        max_length: Longest allowed label; also the number of positions the model predicts.
    """

    pad_id = 0

    def __init__(self, charset: str = DEFAULT_CHARSET, min_length: int = 5, max_length: int = 5) -> None:
        if not charset:
            raise ValueError("charset is empty")
        repeated = sorted({c for c in charset if charset.count(c) > 1})
        if repeated:
            raise ValueError(f"charset repeats {''.join(repeated)!r}")
        if not 1 <= min_length <= max_length:
            raise ValueError(f"need 1 <= min_length <= max_length, got {min_length} and {max_length}")
        self.charset = charset
        self.min_length = min_length
        self.max_length = max_length
        self._itos = ("", *charset)
        self._stoi = {s: i for i, s in enumerate(self._itos) if s}

    @property
    def lengths(self) -> range:
        """The label lengths the tokenizer takes: what a model trained with it reads by default."""
        return range(self.min_length, self.max_length + 1)

    @property
    def num_classes(self) -> int:
        """Characters plus the reserved padding / blank class."""
        return len(self._itos)

    def check(self, label: str) -> None:
        """Raise ``ValueError`` naming what makes ``label`` invalid."""
        bad = sorted({c for c in label if c not in self._stoi})
        if bad:
            raise ValueError(f"label {label!r} has characters outside the charset: {''.join(bad)!r}")
        if not self.min_length <= len(label) <= self.max_length:
            wanted = (
                str(self.max_length) if self.min_length == self.max_length else f"{self.min_length}-{self.max_length}"
            )
            raise ValueError(f"label {label!r} has {len(label)} characters, expected {wanted}")

    def encode(self, labels: Sequence[str]) -> np.ndarray:
        """Encode labels as ids, padded with ``pad_id`` to ``max_length``.

        Returns:
            int64 array of shape (B, max_length).
        """
        ids = np.full((len(labels), self.max_length), self.pad_id, dtype=np.int64)
        for row, label in enumerate(labels):
            self.check(label)
            ids[row, : len(label)] = self.ids(label)
        return ids

    @property
    def one_case(self) -> bool:
        """Whether the charset has letters, all of one case (a model of upper-case captchas)."""
        letters = [c for c in self.charset if c.isalpha()]
        return bool(letters) and (all(c.isupper() for c in letters) or all(c.islower() for c in letters))

    def allowed_characters(self, characters: str) -> set[str]:
        """The charset's characters that ``characters`` allow: letters in either case when the
        charset has one case only (``"abc"`` allows ``ABC`` of an upper-case model)."""
        wanted = set(characters) | ({c.swapcase() for c in characters} if self.one_case else set())
        return wanted & set(self.charset)

    def masked_kinds(self, characters: str) -> list[str]:
        """The kinds of character (``letters``, ``digits``) that the charset has and that
        ``characters`` allow none of: a reading limited to them can only be wrong when the
        captcha holds such a character."""
        allowed = self.allowed_characters(characters)
        kinds = {"letters": str.isalpha, "digits": str.isdigit}
        return [kind for kind, test in kinds.items()
                if any(map(test, self.charset)) and not any(map(test, allowed))]  # fmt: skip

    def allowed(self, characters: str) -> np.ndarray:
        """(C,) bool: the classes a reading limited to ``characters`` may use: those of its
        characters the charset has (see ``allowed_characters``), and the padding / blank class,
        always.

        Raises:
            ValueError: None of ``characters`` is in the charset.
        """
        known = [self._stoi[c] for c in self.allowed_characters(characters)]
        if not known:
            raise ValueError(
                f"none of the allowed characters {characters!r} is in the model's charset {self.charset!r}"
            )
        mask = np.zeros(self.num_classes, dtype=bool)
        mask[[self.pad_id, *known]] = True
        return mask

    def ids(self, text: str) -> list[int]:
        """The ids of a text's characters (all in the charset; its length is not checked)."""
        return [self._stoi[c] for c in text]

    def text(self, ids: Sequence[int]) -> str:
        """The characters of character ids (no padding id among them)."""
        return "".join(self._itos[i] for i in ids)

    def decode(self, ids: "IdRows") -> list[str]:
        """Decode per-position ids (B, L), an array or tensor: each string ends at its first padding id."""
        texts = []
        for row in ids.tolist():
            end = row.index(self.pad_id) if self.pad_id in row else len(row)
            texts.append(self.text(row[:end]))
        return texts
