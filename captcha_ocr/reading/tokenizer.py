"""Every mapping between captcha text and class ids lives here (numpy only, no torch)."""

from collections.abc import Sequence

import numpy as np

DEFAULT_CHARSET = "2345678bcdefgmnpwxy"


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

    def allowed(self, characters: str) -> np.ndarray:
        """(C,) bool: the classes a reading limited to ``characters`` may use: those of its
        characters the charset has, and the padding / blank class, always.

        Raises:
            ValueError: None of ``characters`` is in the charset.
        """
        known = [self._stoi[c] for c in set(characters) if c in self._stoi]
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

    def decode(self, ids: np.ndarray) -> list[str]:
        """Decode per-position ids (B, L), an array or tensor: each string ends at its first padding id."""
        texts = []
        for row in ids.tolist():
            end = row.index(self.pad_id) if self.pad_id in row else len(row)
            texts.append(self.text(row[:end]))
        return texts
