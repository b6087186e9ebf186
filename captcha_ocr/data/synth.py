"""Synthetic labelled captchas from the ``captcha`` package, reproducible from a seed.

    captcha-ocr synth --count 3000 --charset 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ --length 4-6 \\
        --out data/synthetic --seed 0
    captcha-ocr synth --kind arithmetic --count 4000 --out data/arithmetic     # 12+7=?, 9x3=, ...
    captcha-ocr synth --style mixed --count 50000 --charset 0123456789abc...XYZ --length 4-8 --out data/base

Writes ``<label>.png`` (``<label>_<k>.png`` when a label repeats) into an empty or new folder.
``captcha`` 0.7.0 draws all its randomness from Python's ``random`` module, which this seeds; so do
the five libraries of ``--style mixed`` (``data.styles``), at their own sizes instead of
``width`` x ``height``.
"""

import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from PIL import Image
from rich.progress import track


def parse_lengths(text: str) -> tuple[int, int]:
    """``"5"`` → (5, 5); ``"4-6"`` → (4, 6)."""
    low, _, high = text.partition("-")
    lengths = (int(low), int(high or low))
    if not 1 <= lengths[0] <= lengths[1]:
        raise ValueError(f"bad length range {text!r}")
    return lengths


Kind = Literal["random", "arithmetic", "both"]
Drawing = Literal["captcha", "mixed"]
ARITHMETIC_CHARSET = "+-0123456789=?x"  # what arithmetic captchas are written with
ARITHMETIC_LENGTHS = (4, 7)  # 1+2= ... 12+17=?
ARITHMETIC_SHARE = 0.1  # of the labels of kind "both"


def random_expression() -> str:
    """An arithmetic captcha's text, drawn with ``random``: a sum, a difference (never below
    zero) or a product of one-digit factors, then ``=`` and, half of the time, ``?``."""
    operator = random.choice("+-x")
    if operator == "x":
        left, right = random.randint(1, 9), random.randint(1, 9)
    else:
        left, right = random.randint(0, 20), random.randint(0, 20)
        if operator == "-":
            left, right = max(left, right), min(left, right)
    return f"{left}{operator}{right}=" + random.choice(("?", ""))


def draw_captchas(
    count: int,
    charset: str,
    min_length: int,
    max_length: int,
    seed: int | str,
    width: int = 160,
    height: int = 60,
    kind: Kind = "random",
    style: Drawing = "captcha",
) -> Iterator[tuple[str, Image.Image]]:
    """Yield ``count`` (label, image) pairs with random labels (``kind="random"``: of ``charset``
    and ``min_length``-``max_length`` characters; ``"arithmetic"``: ``random_expression()``;
    ``"both"``: ``ARITHMETIC_SHARE`` of expressions among random texts),
    drawn by the ``captcha`` package (``style="captcha"``) or each by one of five libraries
    (``"mixed"``, see ``data.styles``); the same arguments give the same pairs. Python's global
    ``random`` state is seeded while drawing and restored between pairs (the generators draw from
    it), so code around the generator is not disturbed."""
    if style == "mixed":
        from captcha_ocr.data.styles import mixed_style

        characters = {"random": charset, "arithmetic": ARITHMETIC_CHARSET, "both": charset + ARITHMETIC_CHARSET}[kind]
        draw = mixed_style("".join(sorted(set(characters))))
    else:
        from captcha.image import ImageCaptcha

        draw = ImageCaptcha(width=width, height=height).generate_image
    outside = random.getstate()
    random.seed(seed)
    inside = random.getstate()
    random.setstate(outside)
    for _ in range(count):
        outside = random.getstate()
        random.setstate(inside)
        try:
            if kind == "arithmetic" or (kind == "both" and random.random() < ARITHMETIC_SHARE):
                label = random_expression()
            else:
                label = "".join(random.choice(charset) for _ in range(random.randint(min_length, max_length)))
            image = draw(label)
            inside = random.getstate()
        finally:
            random.setstate(outside)
        yield label, image


CHUNK = 2500  # images per seed of a large drawing


def draw_chunk(args: tuple) -> list[tuple[str, Image.Image]]:
    """``draw_captchas(*args)`` as a list: one chunk of a drawing, in a worker process."""
    return list(draw_captchas(*args))


def drawing(
    n: int, charset: str, min_length: int, max_length: int, seed: int, width: int, height: int, kind: Kind,
    style: Drawing, workers: int, chunk: int = CHUNK,
) -> Iterator[tuple[str, Image.Image]]:  # fmt: skip
    """The pairs of ``synthesize``: one ``workers=1`` stream of ``draw_captchas`` seeded with
    ``seed``; with more workers, chunk ``k`` of ``chunk`` images seeded with ``"<seed>:<k>"``,
    drawn by ``workers`` processes (the same pairs for any number of workers above one)."""
    if workers == 1 or n <= chunk:
        yield from draw_captchas(n, charset, min_length, max_length, seed, width, height, kind, style)
        return
    chunks = [(min(chunk, n - start), charset, min_length, max_length, f"{seed}:{k}", width, height, kind, style)
              for k, start in enumerate(range(0, n, chunk))]  # fmt: skip
    with ProcessPoolExecutor(workers) as pool:
        for pairs in pool.map(draw_chunk, chunks):
            yield from pairs


def synthesize(
    out: str | Path,
    n: int,
    charset: str,
    min_length: int,
    max_length: int,
    seed: int = 0,
    width: int = 160,
    height: int = 60,
    progress: bool = True,
    kind: Kind = "random",
    style: Drawing = "captcha",
    workers: int = 1,
) -> list[Path]:
    """Write ``n`` captchas with random labels (see ``draw_captchas`` and ``drawing``); the same
    arguments give the same files."""
    folder = Path(out)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty")
    folder.mkdir(parents=True, exist_ok=True)
    seen: Counter = Counter()
    paths = []
    drawn = drawing(n, charset, min_length, max_length, seed, width, height, kind, style, workers)
    for label, image in track(drawn, total=n, description="drawing", disable=not progress):
        stem = label if not seen[label] else f"{label}_{seen[label]}"
        seen[label] += 1
        path = folder / f"{stem}.png"
        image.save(path)
        paths.append(path)
    return paths
