"""The preparation graph (``model.preparation_graph``) prepares images exactly as Python does
(``images.prepare_grey``): the stated tolerance is zero, every prepared value equal, on drawn
captchas of several generators, every perturbation family of the robustness benchmark at every
strength, odd sizes and pages, and all of captcha_images_v2 when it is present; and the ONNX
reader that uses it reads as the reader that prepares in Python."""

import base64
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from captcha_ocr.analysis.perturbations import PERTURBATIONS, STRENGTHS
from captcha_ocr.data.synth import draw_captchas
from captcha_ocr.reading import reader as reader_module
from captcha_ocr.reading.images import prepare_grey, read_grey, to_grey
from captcha_ocr.reading.reader import CaptchaReader
from captcha_ocr.reading.weights import ONNX_PREPARATION_KEY

from .helpers import draw_captcha, write_tiny_weights

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from captcha_ocr.model.export import export_onnx  # noqa: E402  (needs onnx)
from captcha_ocr.model.preparation_graph import preparation_model  # noqa: E402

Prepare = Callable[[np.ndarray], np.ndarray]


def graph(height: int = 32, width: int = 128, normalize: bool = True, crop_to_text: bool = True) -> Prepare:
    """The preparation graph as a function of a (B, H, W) uint8 batch -> (B, 1, h, w) uint8."""
    model = preparation_model(height, width, normalize, crop_to_text)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda pixels: np.rint(session.run(["images"], {"pixels": pixels})[0] * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def prepare() -> Prepare:
    return graph()


def python(
    image: Image.Image, height: int = 32, width: int = 128, normalize: bool = True, crop: bool = True
) -> np.ndarray:
    return prepare_grey(to_grey(image), height, width, crop, normalize)


def drawn(count: int, seed: int) -> list[Image.Image]:
    """Captchas of the five generator libraries of pretraining and of the ``captcha`` package."""
    mixed = [image for _, image in draw_captchas(count, "abcdefgh2345678", 4, 7, seed, style="mixed")]
    plain = [image for _, image in draw_captchas(count, "abcdefgh2345678", 4, 7, seed, style="captcha")]
    return mixed + plain + [draw_captcha("226md")]


def odd_pages() -> dict[str, Image.Image]:
    """Sizes and pages where the preparation takes its other branches: images lower than the
    working height (blurs of other radii), tall and narrow ones (Pillow's other pass order),
    blank and nearly blank pages, light on dark, a frame and a caption, a text at the edge, and
    noise down to one pixel and up to 3,000 pixels long."""
    text = draw_captcha("7bx4k", mode="L")
    framed = ImageOps.expand(text, border=3, fill=0)
    captioned = Image.new("L", (200, 90), 255)
    captioned.paste(text, (0, 40))
    ImageDraw.Draw(captioned).text((5, 5), "Type the characters below", fill=0, font_size=14)
    one_dot = Image.new("L", (60, 20), 255)
    one_dot.putpixel((30, 10), 0)
    return {
        **{
            f"{w}x{h}": text.resize((w, h), Image.Resampling.BILINEAR)
            for w, h in ((20, 6), (40, 9), (48, 12), (70, 17), (90, 25), (120, 31), (128, 32), (130, 33), (190, 47))
        },
        "tall": text.resize((40, 200), Image.Resampling.BILINEAR),
        "wide": text.resize((900, 60), Image.Resampling.BILINEAR),
        "white": Image.new("L", (200, 50), 255),
        "black": Image.new("L", (200, 50), 0),
        "one dot": one_dot,
        "inverted": ImageOps.invert(text),
        "framed": framed,
        "captioned": captioned,
        "at the edge": text.crop((35, 0, 200, 50)),
        **{
            f"noise {w}x{h}": noise(w, h) for w, h in ((1, 1), (1, 5), (5, 1), (2, 2), (300, 1), (30, 2000), (3000, 30))
        },
    }


def noise(width: int, height: int) -> Image.Image:
    values = np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width), dtype=np.uint8)
    return Image.fromarray(values)


def assert_prepared_alike(prepare: Prepare, images: dict[str, Image.Image]) -> None:
    for name, image in images.items():
        pixels = np.asarray(to_grey(image))[None]
        np.testing.assert_array_equal(prepare(pixels), python(image)[None], err_msg=name)


def test_drawn_captchas_are_prepared_as_in_python(prepare: Prepare) -> None:
    assert_prepared_alike(prepare, {f"drawn {i}": image for i, image in enumerate(drawn(6, seed=1))})


def test_every_perturbation_family_is_prepared_as_in_python(prepare: Prepare) -> None:
    sources = drawn(1, seed=2)
    rng = np.random.default_rng(0)
    images = {
        f"{family.name} {strength} {i}": family(source, strength, rng)
        for family in PERTURBATIONS
        for strength in STRENGTHS
        for i, source in enumerate(sources)
    }
    assert_prepared_alike(prepare, images)


def test_odd_sizes_and_pages_are_prepared_as_in_python(prepare: Prepare) -> None:
    assert_prepared_alike(prepare, odd_pages())


@pytest.mark.parametrize(("normalize", "crop"), [(False, True), (False, False), (True, False)])
def test_older_models_preparations_are_graphs_too(normalize: bool, crop: bool) -> None:
    prepare = graph(24, 96, normalize, crop)
    for name, image in {**odd_pages(), "drawn": drawn(1, seed=3)[0]}.items():
        pixels = np.asarray(to_grey(image))[None]
        np.testing.assert_array_equal(prepare(pixels), python(image, 24, 96, normalize, crop)[None], err_msg=name)


def test_a_batch_is_prepared_as_its_images_one_by_one(prepare: Prepare) -> None:
    images = [image.resize((160, 60)) for image in drawn(3, seed=4)]
    batch = np.stack([np.asarray(to_grey(image)) for image in images])  # (B, 60, 160)
    np.testing.assert_array_equal(prepare(batch), np.stack([prepare(pixels[None])[0] for pixels in batch]))


def test_all_of_the_data_set_is_prepared_as_in_python(prepare: Prepare, real_data: Path) -> None:
    files = sorted(real_data.glob("*.png"))
    for start in range(0, len(files), 128):
        chunk = files[start : start + 128]
        greys = [read_grey(file) for file in chunk]
        expected = np.stack([prepare_grey(grey, 32, 128, True, True) for grey in greys])
        np.testing.assert_array_equal(prepare(np.stack([np.asarray(grey) for grey in greys])), expected)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    weights = write_tiny_weights(tmp_path_factory.mktemp("weights") / "tiny.pt")
    return weights, export_onnx(weights.with_suffix(".onnx"), weights)


def test_the_onnx_reader_prepares_in_the_graph_and_reads_as_python(
    tiny_models: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    weights, exported = tiny_models
    in_graph, in_python = CaptchaReader(exported, backend="onnx", prepare_in_graph=True), CaptchaReader(weights)
    assert in_graph.prepares_in_graph and not in_python.prepares_in_graph
    assert not CaptchaReader(exported, backend="onnx").prepares_in_graph  # Python prepares, unless asked
    images = [*drawn(3, seed=5), *odd_pages().values()]  # several sizes in one call: one pass per size
    loaded = [in_graph.load(image) for image in images]
    assert all(array.dtype == np.uint8 and array.ndim == 2 for array in loaded)  # decoded grey pixels only
    expected = np.stack([in_python.preprocess(image) for image in images])
    np.testing.assert_array_equal(in_graph.batch(loaded), expected)
    monkeypatch.setattr(reader_module, "GRAPH_PASS_PIXELS", 1)  # one image a pass: the same arrays, in order
    np.testing.assert_array_equal(in_graph.batch(loaded), expected)
    by_graph, by_python = in_graph.read(images), in_python.read(images)
    assert [r.text for r in by_graph] == [r.text for r in by_python]
    np.testing.assert_allclose([r.confidence for r in by_graph], [r.confidence for r in by_python], atol=1e-4)


def test_a_model_file_with_a_broken_preparation_graph_is_refused(
    tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    model = onnx.load(tiny_models[1])
    entry = next(e for e in model.metadata_props if e.key == ONNX_PREPARATION_KEY)
    entry.value = base64.b64encode(b"not an onnx model").decode()
    broken = tmp_path / "broken.onnx"
    onnx.save(model, broken)
    with pytest.raises(ValueError, match="preparation graph cannot be used"):
        CaptchaReader(broken, backend="onnx", prepare_in_graph=True)
    assert not CaptchaReader(broken, backend="onnx").prepares_in_graph  # unused, the graph is not even built


def test_a_model_file_without_a_preparation_graph_prepares_in_python_even_when_asked(
    tiny_models: tuple[Path, Path], tmp_path: Path
) -> None:
    model = onnx.load(tiny_models[1])
    kept = [e for e in model.metadata_props if e.key != ONNX_PREPARATION_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    older = tmp_path / "older.onnx"
    onnx.save(model, older)
    reader = CaptchaReader(older, backend="onnx", prepare_in_graph=True)
    image = draw_captcha("226md")
    assert not reader.prepares_in_graph
    np.testing.assert_array_equal(reader.load(image), reader.preprocess(image))


def test_captcha_ocr_read_prepares_in_the_graph_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from captcha_ocr.cli import main as cli

    for i, image in enumerate(drawn(2, seed=6)):
        image.save(tmp_path / f"{i}.png")
    outputs = []
    for flags in ([], ["--prepare-in-graph"]):
        assert cli(["read", str(tmp_path), "--backend", "onnx", "--model", "crnn", *flags]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and len(outputs[0].splitlines()) == 5
