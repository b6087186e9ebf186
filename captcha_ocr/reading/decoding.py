"""Decoding of each head's logits into texts and confidences, in numpy so that the ONNX reader
runs without torch. ``spec.HEADS`` pairs every head with its decoder here.

Without a length constraint every head reads greedily. With one (``lengths``: the numbers of
characters a reading may have), each head reads its most probable text of an allowed length: the
position head by comparing, for each allowed length, the best characters up to it and the end class
after it; the CTC head by a Viterbi search over (characters written, last class) states. A batch
row that no allowed length fits (a length past the steps the head has) reads as "" with
confidence 0 and ``fits`` False.
"""

from abc import ABC, abstractmethod
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from captcha_ocr.reading.tokenizer import Tokenizer


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits.astype(np.float64)))


def restrict(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Logits (B, S, C) in which the classes outside ``allowed`` (C,) bool can never win, for
    every head: decoding then reads only allowed characters, and every probability is over them."""
    return np.where(allowed, logits, -np.inf)


def greedy(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The most probable class at every step of logits (B, S, C), and its probability: (B, S) each."""
    probs = softmax(logits)
    return probs.argmax(axis=-1), probs.max(axis=-1)


def length_range(lengths: Collection[int]) -> np.ndarray:
    """Allowed lengths as a sorted int array; raises ``ValueError`` for none or one below 1."""
    allowed = np.array(sorted(set(lengths)), dtype=np.int64)
    if allowed.size == 0 or allowed[0] < 1:
        raise ValueError(f"allowed lengths must be one or more numbers of at least 1, got {sorted(set(lengths))}")
    return allowed


@dataclass(frozen=True)
class Decoded:
    """Texts, confidences (B,), per-character confidences and, under a length constraint, whether
    an allowed length fitted each row (always True without one)."""

    texts: list[str]
    confidences: np.ndarray
    characters: list[list[float]]
    fits: np.ndarray


class Decoder(ABC):
    """Reads a head's logits into texts, confidences and per-character confidences."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def decode(self, logits: np.ndarray, lengths: Collection[int] | None = None) -> tuple[list[str], np.ndarray]:
        """Texts and confidences (B,) from logits (B, S, C)."""
        texts, confidences, _ = self.read(logits, lengths)
        return texts, confidences

    def character_confidences(self, logits: np.ndarray) -> list[list[float]]:
        """The probability of each character of the reading, in reading order."""
        return self.read(logits)[2]

    def distribution(self, logits: np.ndarray) -> np.ndarray:
        """The probabilities of every class (padding / blank first, then the charset) at each step
        of the head that reads: (B, S, C)."""
        return softmax(logits)

    def read(
        self, logits: np.ndarray, lengths: Collection[int] | None = None
    ) -> tuple[list[str], np.ndarray, list[list[float]]]:
        """Texts, confidences (B,) and per-character confidences from one pass, of an allowed
        length when ``lengths`` is given."""
        decoded = self.read_constrained(logits, lengths)
        return decoded.texts, decoded.confidences, decoded.characters

    @abstractmethod
    def read_constrained(self, logits: np.ndarray, lengths: Collection[int] | None = None) -> Decoded:
        """``read``, with whether an allowed length fitted each row."""


class GreedyDecoder(Decoder):
    """Reads the most probable class at every step, or the most probable path of an allowed
    length. The confidence of a reading is the probability of its path; a character's confidence
    is the probability of the step(s) that wrote it."""

    def read_constrained(self, logits: np.ndarray, lengths: Collection[int] | None = None) -> Decoded:
        log_probs = log_softmax(logits.astype(np.float64))  # (B, S, C)
        if lengths is None:
            ids, fits = log_probs.argmax(axis=-1), np.ones(len(logits), dtype=bool)
        else:
            ids, fits = self._best_path(log_probs, length_range(lengths))
        chosen = np.exp(np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0])  # (B, S)
        rows = zip(ids.tolist(), chosen.tolist(), fits, strict=True)
        characters = [self._characters(i, p) if ok else [] for i, p, ok in rows]
        texts = [text if ok else "" for text, ok in zip(self._texts(ids), fits, strict=True)]
        confidences = np.where(fits, self._path_probability(ids, chosen), 0.0)
        return Decoded(texts, confidences, characters, fits)

    @abstractmethod
    def _best_path(self, log_probs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The most probable ids (B, S) of a reading of one of ``lengths``, and whether one fits (B,)."""

    @abstractmethod
    def _texts(self, ids: np.ndarray) -> list[str]: ...

    @abstractmethod
    def _path_probability(self, ids: np.ndarray, best: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _characters(self, ids: list[int], best: list[float]) -> list[float]: ...


class PositionDecoder(GreedyDecoder):
    """Logits (B, L, C): position ``i`` is the ``i``-th character; the first end class (the
    padding id) closes the text, and positions after it do not count."""

    def _texts(self, ids: np.ndarray) -> list[str]:
        return self.tokenizer.decode(ids)

    def _best_path(self, log_probs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        B, L, _ = log_probs.shape
        pad = self.tokenizer.pad_id
        characters = log_probs.copy()
        characters[..., pad] = -np.inf
        best_ids, best = characters.argmax(axis=-1), characters.max(axis=-1)  # (B, L) each
        written = np.concatenate([np.zeros((B, 1)), np.cumsum(best, axis=1)], axis=1)  # (B, L + 1)
        closed = np.concatenate([log_probs[..., pad], np.zeros((B, 1))], axis=1)  # (B, L + 1): end class at n
        usable = lengths[lengths <= L]
        if usable.size == 0:
            return np.full((B, L), pad), np.zeros(B, dtype=bool)
        scores = written[:, usable] + closed[:, usable]  # (B, lengths): text of n characters, then the end
        chosen = usable[scores.argmax(axis=1)]  # (B,)
        ids = np.where(np.arange(L)[None, :] < chosen[:, None], best_ids, pad)
        return ids, np.isfinite(scores.max(axis=1))

    def _path_probability(self, ids: np.ndarray, best: np.ndarray) -> np.ndarray:
        positions = np.arange(ids.shape[1])
        ends = np.where(ids == self.tokenizer.pad_id, positions, ids.shape[1]).min(axis=1)  # (B,)
        used = positions[None, :] <= ends[:, None]  # (B, L): the characters and the end class
        return np.where(used, best, 1.0).prod(axis=1)

    def _characters(self, ids: list[int], best: list[float]) -> list[float]:
        pad = self.tokenizer.pad_id
        return best[: ids.index(pad) if pad in ids else len(ids)]


class CTCDecoder(GreedyDecoder):
    """Logits (B, T, C) over time steps with the padding id as the blank: repeats are merged,
    then blanks dropped. A character's confidence is the best step of the run that wrote it, and
    the reading's confidence the product of its characters' confidences, as for the position
    head. (The probability of the whole greedy path counts some 25 blank steps, the ones between
    two characters split between blank and character by nature, and falls to ~0.8 for readings
    whose every character is above 0.99; a threshold on it rejected 69 % of the right readings
    at 0.8. The price: a character the path skipped does not lower the confidence.)"""

    def _texts(self, ids: np.ndarray) -> list[str]:
        pad = self.tokenizer.pad_id
        rows = ids.tolist()
        return [self.tokenizer.text([i for t, i in enumerate(row) if (t == 0 or i != row[t - 1]) and i != pad])
                for row in rows]  # fmt: skip

    def _path_probability(self, ids: np.ndarray, best: np.ndarray) -> np.ndarray:
        rows = zip(ids.tolist(), best.tolist(), strict=True)
        return np.array([np.prod(self._characters(i, p)) for i, p in rows])  # (B,)

    def _best_path(self, log_probs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Viterbi over states (n characters written, last class): a blank keeps n, the same
        character again continues its run, another character (or one after a blank) writes the
        (n + 1)-th."""
        B, T, C = log_probs.shape
        K, blank = int(lengths[-1]), self.tokenizer.pad_id
        is_blank = np.arange(C) == blank  # (C,)
        score = np.full((B, K + 1, C), -np.inf)  # (B, K + 1, C): best log-probability of each state
        score[:, 0, blank] = log_probs[:, 0, blank]
        score[:, 1, ~is_blank] = log_probs[:, 0, ~is_blank]
        previous = np.zeros((T, B, K + 1, C, 2), dtype=np.int64)  # (n, class) of each state's best predecessor
        n_of = np.broadcast_to(np.arange(K + 1)[None, :, None], (B, K + 1, C))
        c_of = np.broadcast_to(np.arange(C)[None, None, :], (B, K + 1, C))
        for t in range(1, T):
            order = np.argsort(score, axis=2)
            first, second = order[..., -1], order[..., -2]  # (B, K + 1): best and second-best last class
            # from a state of n - 1 whose last class is not c (a blank, or another character)
            source = np.where(first[:, :-1, None] == c_of[:, 1:], second[:, :-1, None], first[:, :-1, None])
            step = np.full_like(score, -np.inf)
            step[:, 1:] = np.take_along_axis(score[:, :-1], source, axis=2)  # (B, K, C)
            from_step = step > score  # else the run of c goes on: (n, c)
            new = np.maximum(score, step)
            previous[t, ..., 0] = np.where(from_step, n_of - 1, n_of)
            previous[t, :, 1:, :, 1] = np.where(from_step[:, 1:], source, c_of[:, 1:])
            previous[t, :, 0, :, 1] = c_of[:, 0]
            # a blank follows the best state of the same n
            new[..., blank] = np.take_along_axis(score, first[..., None], axis=2)[..., 0]
            previous[t, ..., blank, 0] = n_of[..., 0]
            previous[t, ..., blank, 1] = first
            score = new + log_probs[:, t, None, :]
        final = np.full_like(score, -np.inf)
        final[:, lengths] = score[:, lengths]
        final = final.reshape(B, -1)  # (B, (K + 1) * C)
        fits = np.isfinite(final.max(axis=1))
        ids = np.full((B, T), blank)
        for b in np.flatnonzero(fits):
            n, c = divmod(int(final[b].argmax()), C)
            for t in range(T - 1, -1, -1):
                ids[b, t] = c
                n, c = previous[t, b, n, c]
        return ids, fits

    def _characters(self, ids: list[int], best: list[float]) -> list[float]:
        characters: list[float] = []
        for t, (i, p) in enumerate(zip(ids, best, strict=True)):
            if i == self.tokenizer.pad_id:
                continue
            if t > 0 and ids[t - 1] == i:  # the same run: keep its best step
                characters[-1] = max(characters[-1], p)
            else:
                characters.append(p)
        return characters


def ctc_log_probability(log_probs: np.ndarray, labels: list[list[int]], blank: int) -> np.ndarray:
    """Log-probability that CTC outputs (B, T, C) read each label: the sum over every alignment
    (the CTC forward algorithm), for all images at once.

    Args:
        log_probs: Log-softmax of the logits (B, T, C).
        labels: Each image's class ids, without blanks.
        blank: The blank's class id.

    Returns:
        (B,) log-probabilities.
    """
    B, T, _ = log_probs.shape
    S = 2 * max((len(label) for label in labels), default=0) + 1
    extended = np.full((B, S), blank)  # (B, S): blank, l1, blank, l2, ..., blank
    for b, label in enumerate(labels):
        extended[b, 1 : 2 * len(label) : 2] = label
    emit = np.take_along_axis(log_probs, np.broadcast_to(extended[:, None], (B, T, S)), axis=2)  # (B, T, S)
    # a step may skip the blank between two different characters
    skip = np.zeros((B, S), dtype=bool)
    skip[:, 2:] = (extended[:, 2:] != blank) & (extended[:, 2:] != extended[:, :-2])
    alpha = np.full((B, S), -np.inf)
    alpha[:, :2] = emit[:, 0, :2]
    for t in range(1, T):
        stay, step, jump = alpha, np.full_like(alpha, -np.inf), np.full_like(alpha, -np.inf)
        step[:, 1:] = alpha[:, :-1]
        jump[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(stay, step), jump) + emit[:, t]
    ends = np.array([2 * len(label) for label in labels])  # (B,): the last blank; the last character before it
    last_blank = alpha[np.arange(B), ends]
    last_character = np.where(ends > 0, alpha[np.arange(B), np.maximum(ends - 1, 0)], -np.inf)
    return np.logaddexp(last_blank, last_character)


class JointDecoder(Decoder):
    """Logits (B, L + T, C) of the joint head: the first ``max_length`` steps are the position
    head's, which reads; the rest are the CTC head's, which checks. A reading's confidence is the
    lower of the two heads' probabilities of that same text (for CTC, summed over every
    alignment), so that a reading the heads disagree on is uncertain."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer)
        self.position = PositionDecoder(tokenizer)

    def read_constrained(self, logits: np.ndarray, lengths: Collection[int] | None = None) -> Decoded:
        L = self.tokenizer.max_length
        read = self.position.read_constrained(logits[:, :L], lengths)
        ids = [self.tokenizer.ids(text) for text in read.texts]
        log_probs = log_softmax(logits[:, L:].astype(np.float64))  # (B, T, C)
        checked = np.exp(ctc_log_probability(log_probs, ids, self.tokenizer.pad_id))  # (B,)
        return Decoded(read.texts, np.minimum(read.confidences, checked), read.characters, read.fits)

    def distribution(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits[:, : self.tokenizer.max_length])  # (B, L, C): the position head's
