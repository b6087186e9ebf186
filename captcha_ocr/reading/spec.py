"""What a model is besides its weights, without torch: the text table, the input, the architecture
and the geometry that follows from them, and the one table of heads (name -> decoder, output
steps, the reading in words). The network (``model.network``), the exporter, the readers, the
ONNX graph check, weight transfer and the CLI all read a model through this description;
``model.heads`` adds each head's layers and loss under the same names.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Literal

from captcha_ocr.reading.decoding import CTCDecoder, Decoder, JointDecoder, PositionDecoder
from captcha_ocr.reading.tokenizer import Tokenizer

Head = Literal["position", "ctc", "joint"]  # the names a config may give


@dataclass(frozen=True)
class HeadReading:
    """How a head's output is read: its decoder, its output steps from the longest label and the
    time steps of the feature map, and the reading in words (for the ONNX file's doc string;
    ``{L}`` and ``{T}`` stand for those two numbers)."""

    decoder: type[Decoder]
    steps: Callable[[int, int], int]
    in_words: str


POSITION_IN_WORDS = "step i is the i-th character, and the first step whose best class is 0 ends the text"
HEADS: dict[str, HeadReading] = {
    "position": HeadReading(PositionDecoder, lambda max_length, time_steps: max_length, POSITION_IN_WORDS),
    "ctc": HeadReading(
        CTCDecoder,
        lambda max_length, time_steps: time_steps,
        "one step per strip of the image, left to right (CTC): the best class of each, repeats merged, class 0 dropped",
    ),
    "joint": HeadReading(
        JointDecoder,
        lambda max_length, time_steps: max_length + time_steps,
        f"the first {{L}} steps read the text ({POSITION_IN_WORDS}); the other {{T}}, one per strip of the "
        "image, are a CTC head whose probability of that same text checks it",
    ),
}

# Fields that model files from before they existed lack, with the value those models were made with.
LEGACY_VALUES = {"crop_to_text": False}


def strided_length(size: int, strides: Iterable[int]) -> int:
    """The length of an axis after 3x3 convolutions with padding 1 and these strides: the rows
    of the network's last feature map, or the CTC head's time steps (from the width)."""
    for stride in strides:
        size = (size - 1) // stride + 1
    return size


@dataclass(frozen=True)
class ModelSpec:
    """Everything besides the weights that a network is: the text table, the input size and
    preparation, and the architecture (see ``model.network.CaptchaNet``)."""

    charset: str
    min_length: int
    max_length: int
    height: int
    width: int
    crop_to_text: bool
    head: str
    channels: tuple[int, ...]
    strides: tuple[tuple[int, int], ...]
    blocks_per_stage: int
    lstm_hidden: int
    lstm_layers: int
    flatten_height: bool = False
    normalize: bool = False  # model files from before page normalisation did not normalise
    ctc_weight: float = 0.5  # the joint head's weight of its CTC loss
    stem_stride: tuple[int, int] = (1, 1)  # older networks kept the stem at full resolution

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"unknown head {self.head!r}; known: {', '.join(HEADS)}")
        if len(self.channels) != len(self.strides):
            raise ValueError(f"one stride per stage: {len(self.channels)} channels, {len(self.strides)} strides")

    @classmethod
    def from_dict(cls, values: Mapping) -> "ModelSpec":
        """The spec in a checkpoint's hyper-parameters or an ONNX file's metadata (other keys are
        ignored; a field that older files lack takes the value those models were made with).

        Raises:
            KeyError: A field without such a value is missing.
        """
        values = {**LEGACY_VALUES, **values}
        known = {f.name: values[f.name] for f in fields(cls) if f.name in values or f.default is MISSING}
        known["channels"] = tuple(known["channels"])
        known["strides"] = tuple(tuple(stride) for stride in known["strides"])
        if "stem_stride" in known:
            known["stem_stride"] = tuple(known["stem_stride"])
        return cls(**known)

    def to_dict(self) -> dict:
        return asdict(self)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.charset, self.min_length, self.max_length)

    def decoder(self) -> Decoder:
        """The decoder of this spec's head."""
        return HEADS[self.head].decoder(self.tokenizer())

    def feature_map_size(self) -> tuple[int, int]:
        """(rows, columns) of the network's last feature map: the input size after the stem's
        stride and each stage's. The columns are the CTC head's time steps."""
        strides = [self.stem_stride, *self.strides]
        rows = strided_length(self.height, (stride[0] for stride in strides))
        return rows, strided_length(self.width, (stride[1] for stride in strides))

    def output_steps(self) -> int:
        """The steps of the network's output (B, steps, characters + 1)."""
        return HEADS[self.head].steps(self.max_length, self.feature_map_size()[1])

    def check_graph(self, input_shape: list, output_shape: list) -> None:
        """Check that this spec describes the graph it travels with: input (B, 1, height, width)
        and output (B, output steps, characters + 1). Dimensions the graph leaves symbolic pass.

        Raises:
            ValueError: Naming the first dimension that does not fit.
        """
        expected = {
            "input channels": (input_shape[1], 1),
            "input height": (input_shape[2], self.height),
            "input width": (input_shape[3], self.width),
            f"output steps of the {self.head} head": (output_shape[1], self.output_steps()),
            "output classes (characters + 1)": (output_shape[2], len(self.charset) + 1),
        }
        for what, (found, wanted) in expected.items():
            if isinstance(found, int) and found != wanted:
                raise ValueError(f"{what}: the graph has {found}, the spec says {wanted}")
