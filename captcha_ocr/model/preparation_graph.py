"""The reader's preparation of an image as an ONNX graph, so that it runs inside onnxruntime
(batched, on its threads, outside Python's GIL) and in any language that has onnxruntime.

The graph maps ``pixels``, uint8 (B, H, W) grey images of one size, to ``images``, float32
(B, 1, height, width) in [0, 1]: what ``reading.images.load_image`` makes of the same grey
pixels. It follows ``normalize_page``, ``find_text``, ``crop_text`` and Pillow 13's bilinear
resize and box blurs step by step in their own arithmetic (Pillow's fixed-point coefficients,
its rounding to 8 bits after each pass, its order of the two passes), so that the prepared
arrays are the ones Python makes, bit for bit (``tests/test_preparation_graph.py``). Every step
works on the whole batch: resizes gather each output pixel's taps, blurs are differences of
cumulative sums, histograms and run lengths are scatters.

Pixel values travel as float32 (whole numbers 0-255, exact); fixed-point sums as int32 or int64;
sizes and Pillow's coefficient arithmetic as float64, as Python computes them.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from captcha_ocr.reading.images import (
    FRAME_HEIGHT,
    RULE_LENGTH,
    RULE_WIDTH,
    TEXT_MARGIN,
    TEXT_TRIM,
    WORKING_HEIGHT,
)

OPSET = 18  # ScatterElements with reduction="add"
IR_VERSION = 10  # as torch's exporter writes the network: runtimes of other languages read no newer
RESAMPLE_BITS = 22  # Pillow's fixed-point resampling coefficients (Resample.c: 32 - 8 - 2)
BLUR_BITS = 24  # Pillow's box blur weights (BoxBlur.c)
DOUBLE, FLOAT, INT32, INT64 = TensorProto.DOUBLE, TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64


@dataclass
class Builder:
    """Nodes added by calling an operator by name (``g.Add(a, b)``), each call returning the
    name of its output; constants (``g.const``) become initializers."""

    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    count: int = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value: float | int | list | np.ndarray, dtype: type = np.float32) -> str:
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), self.name("c"))
        self.initializers.append(tensor)
        return tensor.name

    def i64(self, value: int | list | np.ndarray) -> str:
        return self.const(value, np.int64)

    def f64(self, value: float) -> str:
        return self.const(value, np.float64)

    def branch(self, build: "Callable[[Builder], str]") -> onnx.GraphProto:
        """A subgraph (for ``If``) of the nodes that ``build`` adds to a builder sharing this
        one's initializers and names; its one output is what ``build`` returns."""
        sub = Builder(initializers=self.initializers, count=self.count)
        result = build(sub)
        output = sub.Identity(result)
        self.count = sub.count
        return helper.make_graph(
            sub.nodes, self.name("branch"), [], [helper.make_tensor_value_info(output, FLOAT, None)]
        )

    def __getattr__(self, op_type: str):
        def add(*inputs: str, **attributes) -> str:
            output = self.name(op_type.lower())
            self.nodes.append(helper.make_node(op_type, list(inputs), [output], **attributes))
            return output

        return add


@dataclass(frozen=True)
class Sizes:
    """The batch's dimensions as int64 scalars: images, rows, columns."""

    batch: str
    height: str
    width: str


# --- small pieces -------------------------------------------------------------------------------


def _index(g: Builder, values: str, i: int) -> str:
    """values[i] of a 1-D tensor, as a scalar."""
    return g.Gather(values, g.i64(i), axis=0)


def _vector(g: Builder, *scalars: str) -> str:
    """A 1-D int64 tensor of int64 scalars."""
    return g.Concat(*[g.Unsqueeze(s, g.i64([0])) for s in scalars], axis=0)


def _arange(g: Builder, end: str, to: int = DOUBLE) -> str:
    """(end,) 0, 1, ..., end - 1 of an int64 scalar, as ``to``."""
    return g.Cast(g.Range(g.i64(0), end, g.i64(1)), to=to)


def _transposed(g: Builder, values: str) -> str:
    """(B, H, W) -> (B, W, H)."""
    return g.Transpose(values, perm=[0, 2, 1])


def _shift(g: Builder, values: str, forward: bool) -> str:
    """(B, n) values moved one place along the last axis (towards its end when ``forward``),
    the place left filled with 0."""
    pads = [0, 1, 0, 0] if forward else [0, 0, 0, 1]
    start, end = ([0], [-1]) if forward else ([1], [np.iinfo(np.int64).max])
    return g.Slice(g.Pad(values, g.i64(pads)), g.i64(start), g.i64(end), g.i64([1]))


def _scatter_add(g: Builder, slots: str, indices: str, values: str) -> str:
    """(B, slots) float32 sums of (B, n) ``values`` by their (B, n) int64 ``indices``."""
    zeros = g.ConstantOfShape(slots, value=numpy_helper.from_array(np.zeros(1, np.float32)))
    return g.ScatterElements(zeros, indices, values, axis=1, reduction="add")


def _histogram(g: Builder, pixels: str, batch: str) -> str:
    """(B, 256) float32 counts of the grey levels of (B, ...) float32 pixels."""
    levels = g.Cast(g.Reshape(pixels, _vector(g, batch, g.i64(-1))), to=INT64)  # (B, N)
    ones = g.Expand(g.const(1.0), g.Shape(levels))
    return _scatter_add(g, _vector(g, batch, g.i64(256)), levels, ones)


def _otsu(g: Builder, counts: str) -> tuple[str, str]:
    """``images.otsu_threshold`` of (B, 256) counts, in float64 as numpy computes it: (B, 1)
    int64 the level, and (B, 1) float64 the number of pixels at or below it."""
    counts = g.Cast(counts, to=DOUBLE)
    weight_low = g.CumSum(counts, g.i64(1))  # (B, 256)
    sum_low = g.CumSum(g.Mul(counts, g.const(np.arange(256), np.float64)), g.i64(1))
    last = g.i64([255])
    total, total_sum = g.Gather(weight_low, last, axis=1), g.Gather(sum_low, last, axis=1)  # (B, 1)
    difference = g.Sub(g.Mul(sum_low, total), g.Mul(weight_low, total_sum))
    weights = g.Mul(weight_low, g.Sub(total, weight_low))
    positive = g.Greater(weights, g.f64(0.0))
    between = g.Div(g.Mul(difference, difference), g.Where(positive, weights, g.f64(1.0)))
    threshold = g.ArgMax(g.Where(positive, between, g.f64(0.0)), axis=1, keepdims=1)  # the first of equal maxima
    return threshold, g.GatherElements(weight_low, threshold, axis=1)


def _median(g: Builder, pixels: str, batch: str) -> str:
    """(B, 1, 1) float32: ``images.page_level`` of (B, H, W) pixels, the median grey level."""
    cumulative = g.CumSum(_histogram(g, pixels, batch), g.i64(1))  # (B, 256)
    half = g.Div(g.Gather(cumulative, g.i64([255]), axis=1), g.const(2.0))
    level = g.ReduceSum(g.Cast(g.Less(cumulative, half), to=FLOAT), g.i64([1]), keepdims=1)
    return g.Unsqueeze(level, g.i64([2]))


# --- Pillow's resize and blurs --------------------------------------------------------------------


@dataclass(frozen=True)
class Taps:
    """A bilinear resize along one axis: per output pixel, the input pixels it weighs (int64
    (N, out, K), clamped to the axis), their integer coefficients (int32 (N, out, K), 0 past
    the axis) and the coefficients past the axis (int32 (N, out)); ``shared``: N = 1, the
    same for the whole batch, else N = B, one per image."""

    indices: str
    weights: str
    outside: str
    shared: bool


def _taps(g: Builder, in_size: str, out_size: str, offset: str, source: str, shared: bool) -> Taps:
    """Pillow's bilinear coefficients (Resample.c ``precompute_coeffs``, then 8-bit fixed point)
    for resizing ``in_size`` pixels that start at ``offset`` of an axis of ``source`` pixels to
    ``out_size``: where they reach past the axis, the page colour fills in (as
    ``images.crop_to_box`` frames the file).

    Args:
        in_size, offset: (N, 1) float64. out_size, source: int64 scalars.
    """
    scale = g.Div(in_size, g.Cast(out_size, to=DOUBLE))  # (N, 1)
    support = g.Max(scale, g.f64(1.0))  # the bilinear filter's support (1) times its scale
    inverse = g.Div(g.f64(1.0), support)
    centre = g.Mul(g.Add(_arange(g, out_size), g.f64(0.5)), scale)  # (N, out)
    first = g.Max(g.Floor(g.Add(g.Sub(centre, support), g.f64(0.5))), g.f64(0.0))
    end = g.Min(g.Floor(g.Add(g.Add(centre, support), g.f64(0.5))), in_size)
    taps = g.Add(g.Mul(g.Cast(g.ReduceMax(g.Ceil(support), keepdims=0), to=INT64), g.i64(2)), g.i64(1))
    tap = _arange(g, taps)  # (K,)
    along = g.i64([2])
    position = g.Add(g.Unsqueeze(first, along), tap)  # (N, out, K), from the span's start
    valid = g.Cast(g.Less(tap, g.Unsqueeze(g.Sub(end, first), along)), to=DOUBLE)
    distance = g.Mul(g.Add(g.Sub(position, g.Unsqueeze(centre, along)), g.f64(0.5)), g.Unsqueeze(inverse, along))
    weight = g.Mul(g.Relu(g.Sub(g.f64(1.0), g.Abs(distance))), valid)
    total = g.ReduceSum(weight, along, keepdims=1)
    weight = g.Div(weight, g.Where(g.Equal(total, g.f64(0.0)), g.f64(1.0), total))
    fixed = g.Floor(g.Add(g.Mul(weight, g.f64(float(1 << RESAMPLE_BITS))), g.f64(0.5)))
    pixel = g.Add(position, g.Unsqueeze(offset, along))  # (N, out, K) on the axis
    inside = g.Cast(g.And(g.GreaterOrEqual(pixel, g.f64(0.0)), g.Less(pixel, g.Cast(source, to=DOUBLE))), to=DOUBLE)
    outside = g.ReduceSum(g.Sub(fixed, g.Mul(fixed, inside)), along, keepdims=0)
    last = g.Cast(g.Sub(source, g.i64(1)), to=DOUBLE)
    indices = g.Cast(g.Clip(pixel, g.f64(0.0), last), to=INT64)
    return Taps(indices, g.Cast(g.Mul(fixed, inside), to=INT32), g.Cast(outside, to=INT32), shared)


def _to_8_bits(g: Builder, total: str, bits: int, dtype: type) -> str:
    """Pillow's rounding of non-negative fixed-point sums to 8 bits, (sum + half) >> bits,
    clipped, as float32."""
    half, one = g.const(1 << (bits - 1), dtype), g.const(1 << bits, dtype)
    shifted = g.Div(g.Add(total, half), one)  # integer division: the shift
    return g.Cast(g.Min(shifted, g.const(255, dtype)), to=FLOAT)


def _resample_rows(g: Builder, image: str, taps: Taps, fill: str | None) -> str:
    """One pass of Pillow's bilinear resize down the columns of (B, S, C) float32 8-bit values:
    (B, out, C). ``fill``: (B, 1, 1) float32 value of rows past the image's edges. Whole rows
    are gathered per tap (contiguous copies), then weighed and summed."""
    values = g.Cast(image, to=INT32)
    shape = g.Shape(taps.indices)  # (N, out, K)
    if taps.shared:
        picked = g.Gather(values, g.Reshape(taps.indices, g.i64([-1])), axis=1)  # (B, out K, C)
        per_tap = g.Concat(g.i64([0]), g.Slice(shape, g.i64([1]), g.i64([3])), g.i64([-1]), axis=0)
    else:  # each image its own taps: index the batch's rows laid end to end
        image_shape = g.Shape(values)
        rows = g.Reshape(
            values, g.Concat(g.i64([-1]), g.Slice(image_shape, g.i64([2]), g.i64([3])), axis=0)
        )  # (B S, C)
        first_rows = g.Mul(g.Range(g.i64(0), _index(g, shape, 0), g.i64(1)), _index(g, image_shape, 1))
        flat = g.Reshape(g.Add(taps.indices, g.Reshape(first_rows, g.i64([-1, 1, 1]))), g.i64([-1]))
        picked = g.Gather(rows, flat, axis=0)  # (B out K, C)
        per_tap = g.Concat(shape, g.i64([-1]), axis=0)
    weighed = g.Mul(g.Reshape(picked, per_tap), g.Unsqueeze(taps.weights, g.i64([3])))  # (B, out, K, C)
    total = g.ReduceSum(weighed, g.i64([2]), keepdims=0)  # (B, out, C)
    if fill is not None:
        total = g.Add(total, g.Mul(g.Cast(fill, to=INT32), g.Unsqueeze(taps.outside, g.i64([2]))))
    return _to_8_bits(g, total, RESAMPLE_BITS, np.int32)


def _vertical_first(g: Builder, in_width: str, in_height: str, out_width: str, out_height: str) -> str:
    """Pillow 13's order of its two passes (Resample.c ``ImagingResampleInner``): the height
    first when it shrinks by more than twice as many pixels as the width does.
    float64 sizes of shapes that broadcast."""
    shrink = g.Sub(in_height, out_height)
    return g.And(g.Greater(shrink, g.f64(0.0)), g.Greater(shrink, g.Mul(g.Sub(in_width, out_width), g.f64(2.0))))


def _resize(
    g: Builder, image: str, columns: Taps, rows: Taps, vertical_first: str | None, fill: str | None = None
) -> str:
    """Pillow's two-pass bilinear resize of (B, H, W) float32 8-bit values, each pass rounded
    to 8 bits: the width first (``columns`` taps), then the height (``rows``), or the other way
    where ``vertical_first`` says so (bool, (B, 1) per image or a scalar for the batch; None:
    never). Only the orders that some image of the batch takes are computed."""

    def across(b: Builder, values: str) -> str:
        return _transposed(b, _resample_rows(b, _transposed(b, values), columns, fill))

    def down(b: Builder, values: str) -> str:
        return _resample_rows(b, values, rows, fill)

    def horizontal_first(b: Builder) -> str:
        return down(b, across(b, image))

    def vertical_first_everywhere(b: Builder) -> str:
        return across(b, down(b, image))

    if vertical_first is None:
        return horizontal_first(g)
    votes = g.Cast(vertical_first, to=FLOAT)

    def mixed(b: Builder) -> str:  # some images one way, some the other
        return b.Where(b.Reshape(vertical_first, b.i64([-1, 1, 1])), vertical_first_everywhere(b), horizontal_first(b))

    def not_all(b: Builder) -> str:
        none = b.Equal(b.ReduceMax(votes, keepdims=0), b.const(0.0))
        return b.If(none, then_branch=b.branch(horizontal_first), else_branch=b.branch(mixed))

    every = g.Equal(g.ReduceMin(votes, keepdims=0), g.const(1.0))
    return g.If(every, then_branch=g.branch(vertical_first_everywhere), else_branch=g.branch(not_all))


def _whole_axis(g: Builder, size: str, out_size: str) -> Taps:
    """The taps of a whole axis of ``size`` pixels resized to ``out_size`` (int64 scalars)."""
    in_size = g.Reshape(g.Cast(size, to=DOUBLE), g.i64([1, 1]))
    return _taps(g, in_size, out_size, g.Mul(in_size, g.f64(0.0)), size, shared=True)


@dataclass(frozen=True)
class BoxBlur:
    """One box blur's int64 scalars: the integer radius, the weight of the 2 radius + 1 pixels
    around each and of the next one on each side (out of 2^24), and the pixels it reaches."""

    radius: str
    inner: str
    outer: str
    reach: str


def _box_blur_pass(g: Builder, image: str, blur: BoxBlur) -> str:
    """One pass of Pillow's box blur (BoxBlur.c) along the rows of (B, h, w) int64 8-bit values:
    ``inner`` times the sum of the 2 radius + 1 pixels around each, plus ``outer`` times the next
    one on each side, edges repeated, rounded to 8 bits (the weights sum to at most 2^24, so the
    result needs no clipping)."""
    width = _vector(g, _index(g, g.Shape(image), 2))
    zero = g.i64(0)
    padded = g.Pad(image, _vector(g, zero, zero, blur.reach, zero, zero, blur.reach), mode="edge")
    before = g.CumSum(padded, g.i64(2), exclusive=1)  # (B, h, w + 2 reach): the sum of the pixels before each

    def columns(values: str, start: str) -> str:
        begin = _vector(g, start)
        return g.Slice(values, begin, g.Add(begin, width), g.i64([2]))

    window = g.Sub(columns(before, g.Add(blur.reach, g.Add(blur.radius, g.i64(1)))), columns(before, g.i64(1)))
    far = g.Add(columns(padded, zero), columns(padded, g.Add(blur.reach, blur.reach)))  # x - r - 1 and x + r + 1
    total = g.Add(g.Add(g.Mul(window, blur.inner), g.Mul(far, blur.outer)), g.i64(1 << (BLUR_BITS - 1)))
    return g.Div(total, g.i64(1 << BLUR_BITS))  # integer division: the shift


def _blur(g: Builder, image: str, parameters: str, passes: int) -> str:
    """Pillow's ``passes`` box blurs along the rows of (B, h, w) float32 values, then as many
    down the columns, each rounded to 8 bits; ``parameters``: (3,) int64 ``box_blur_parameters``."""
    radius, inner, outer = (_index(g, parameters, i) for i in range(3))
    blur = BoxBlur(radius, inner, outer, g.Add(radius, g.i64(1)))
    image = g.Cast(image, to=INT64)
    for _ in range(passes):
        image = _box_blur_pass(g, image, blur)
    image = _transposed(g, image)
    for _ in range(passes):
        image = _box_blur_pass(g, image, blur)
    return g.Cast(_transposed(g, image), to=FLOAT)


def box_blur_parameters(radius: float) -> tuple[int, int, int]:
    """Pillow's integer radius and inner and outer weights (out of 2^24) for a box blur of
    ``radius``, in its single-precision arithmetic (BoxBlur.c ``ImagingHorizontalBoxBlur``)."""
    radius32 = np.float32(radius)
    whole = int(radius32)
    inner = int(np.float32(1 << BLUR_BITS) / (radius32 * np.float32(2) + np.float32(1)))
    return whole, inner, ((1 << BLUR_BITS) - (whole * 2 + 1) * inner) // 2


def gaussian_box_radius(radius: float, passes: int = 3) -> float:
    """The radius of the box blurs, ``passes`` of them, with which Pillow blurs by a Gaussian
    of ``radius`` (BoxBlur.c ``_gaussian_blur_radius``, single precision where it is)."""
    f32 = np.float32
    sigma2 = f32(radius) * f32(radius) / f32(passes)
    length = f32(math.sqrt(12.0 * float(sigma2) + 1.0))
    whole = f32(math.floor((float(length) - 1.0) / 2.0))
    fraction = (f32(2) * whole + f32(1)) * (whole * (whole + f32(1)) - f32(3) * sigma2)
    fraction = fraction / (f32(6) * (sigma2 - (whole + f32(1)) * (whole + f32(1))))
    return float(whole + fraction)


def blur_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per height h of ``normalize_page``'s working copy (row h, 0 to ``WORKING_HEIGHT``; row 0
    unused): the box blur parameters of its Gaussian blur of radius h / 4 and of its box blur
    by the closing's half size, and that half size."""
    heights = range(WORKING_HEIGHT + 1)
    halves = np.array([max(1, h // 8) for h in heights], dtype=np.int64)
    gaussian = np.array([box_blur_parameters(gaussian_box_radius(max(h, 1) / 4)) for h in heights], dtype=np.int64)
    box = np.array([box_blur_parameters(float(half)) for half in halves], dtype=np.int64)
    return gaussian, box, halves


def _max_filter(g: Builder, image: str, half: str) -> str:
    """Grey-scale dilation of (B, h, w) float32 values by a (2 half + 1) square, edges
    repeated, for half up to ``WORKING_HEIGHT // 8`` (past the edges, MaxPool's padding never
    wins, as a repeated edge pixel would not): for the largest half, which every image at least
    ``WORKING_HEIGHT`` high takes, one maximum along each axis; for the others, 3-wide maxima
    repeated half times."""
    planes = g.Unsqueeze(image, g.i64([1]))  # (B, 1, h, w)
    largest = WORKING_HEIGHT // 8

    def at_once(b: Builder) -> str:
        size = 2 * largest + 1
        across = b.MaxPool(planes, kernel_shape=[1, size], pads=[0, largest, 0, largest], strides=[1, 1])
        return b.MaxPool(across, kernel_shape=[size, 1], pads=[largest, 0, largest, 0], strides=[1, 1])

    def step_by_step(b: Builder) -> str:
        values = planes
        for kernel, pads in (([1, 3], [0, 1, 0, 1]), ([3, 1], [1, 0, 1, 0])):
            for step in range(largest):
                pooled = b.MaxPool(values, kernel_shape=kernel, pads=pads, strides=[1, 1])
                values = b.Where(b.Less(b.i64(step), half), pooled, values)
        return values

    dilated = g.If(g.Equal(half, g.i64(largest)), then_branch=g.branch(at_once), else_branch=g.branch(step_by_step))
    return g.Squeeze(dilated, g.i64([1]))


# --- the preparation ----------------------------------------------------------------------------


def normalize_page(g: Builder, grey: str, sizes: Sizes) -> str:
    """``images.normalize_page`` of (B, H, W) float32 8-bit values."""
    batch, H, W = sizes.batch, sizes.height, sizes.width
    working = g.Min(H, g.i64(WORKING_HEIGHT))
    H_d, W_d, working_d = (g.Cast(v, to=DOUBLE) for v in (H, W, working))
    working_width = g.Cast(g.Max(g.Round(g.Div(g.Mul(W_d, working_d), H_d)), g.f64(1.0)), to=INT64)
    vertical_first = _vertical_first(g, W_d, H_d, g.Cast(working_width, to=DOUBLE), working_d)
    small = _resize(g, grey, _whole_axis(g, W, working_width), _whole_axis(g, H, working), vertical_first)
    gaussian, box, halves = blur_tables()
    trend = _blur(g, small, g.Gather(g.i64(gaussian), working, axis=0), passes=3)
    detail = g.Add(g.Floor(g.Div(g.Sub(small, trend), g.const(2.0))), g.const(128.0))  # the page ~128
    _, at_or_below = _otsu(g, _histogram(g, detail, batch))
    area = g.Cast(g.Mul(working, working_width), to=DOUBLE)
    dark_page = g.Unsqueeze(g.Greater(g.Mul(at_or_below, g.f64(2.0)), area), g.i64([2]))  # (B, 1, 1)
    grey = g.Where(dark_page, g.Sub(g.const(255.0), grey), grey)
    small = g.Where(dark_page, g.Sub(g.const(255.0), small), small)
    half = g.Gather(g.i64(halves), working, axis=0)
    closed = g.Neg(_max_filter(g, g.Neg(_max_filter(g, small, half)), half))  # strokes filled with page
    page = _blur(g, closed, g.Gather(g.i64(box), working, axis=0), passes=1)
    page = _resize(
        g, page, _whole_axis(g, working_width, W), _whole_axis(g, working, H), vertical_first=None
    )  # growing
    flat = g.Clip(g.Div(grey, g.Max(page, g.const(1.0))), g.const(0.0), g.const(1.0))
    return g.Round(g.Mul(flat, g.const(255.0)))


def run_lengths(g: Builder, mask: str, sizes: Sizes) -> str:
    """``images.run_lengths`` of (B, H, W) bool: (B, H, W) float32, the length of the
    horizontal run of True that each pixel is in (0 where False)."""
    batch, H, W = sizes.batch, sizes.height, sizes.width
    ended = g.Pad(g.Cast(mask, to=INT64), g.i64([0, 0, 0, 0, 0, 1]))  # (B, H, W + 1): a gap ends every row
    flat = g.Reshape(ended, _vector(g, batch, g.i64(-1)))  # (B, N)
    starts = g.Mul(flat, g.Sub(g.i64(1), _shift(g, flat, forward=True)))
    run = g.Mul(g.CumSum(starts, g.i64(1)), flat)  # (B, N): 1, 2, ... per run, 0 off the runs
    on = g.Cast(flat, to=FLOAT)
    lengths = _scatter_add(g, g.Shape(flat), run, on)  # run i's length at i
    per_pixel = g.Reshape(g.Mul(g.GatherElements(lengths, run, axis=1), on), _vector(g, batch, H, g.i64(-1)))
    return g.Slice(per_pixel, g.i64([0]), _vector(g, W), g.i64([2]))


def ink_mask(g: Builder, grey: str, sizes: Sizes) -> str:
    """``images.ink_mask``: (B, H, W) bool, the smaller of Otsu's two classes."""
    threshold, at_or_below = _otsu(g, _histogram(g, grey, sizes.batch))
    level = g.Unsqueeze(g.Cast(threshold, to=FLOAT), g.i64([2]))  # (B, 1, 1)
    area = g.Cast(g.Mul(sizes.height, sizes.width), to=DOUBLE)
    dark_ink = g.Unsqueeze(g.LessOrEqual(g.Mul(at_or_below, g.f64(2.0)), area), g.i64([2]))
    return g.Or(g.And(dark_ink, g.LessOrEqual(grey, level)), g.And(g.Not(dark_ink), g.Greater(grey, level)))


def rules(g: Builder, ink: str, sizes: Sizes) -> str:
    """``images.rules``: (B, H, W) bool, the ink of long thin straight lines. Run lengths are
    whole numbers, so each float64 bound becomes the whole number that compares the same."""
    across = run_lengths(g, ink, sizes)
    down = _transposed(g, run_lengths(g, _transposed(g, ink), Sizes(sizes.batch, sizes.width, sizes.height)))
    H, W = g.Cast(sizes.height, to=DOUBLE), g.Cast(sizes.width, to=DOUBLE)

    def at_least(bound: str) -> str:
        return g.Cast(g.Ceil(bound), to=FLOAT)

    def at_most(bound: str) -> str:
        return g.Cast(g.Floor(bound), to=FLOAT)

    long_across = g.GreaterOrEqual(across, at_least(g.Mul(g.f64(RULE_LENGTH), W)))
    long_down = g.GreaterOrEqual(down, at_least(g.Mul(g.f64(FRAME_HEIGHT), H)))
    thin_across = g.LessOrEqual(down, at_most(g.Max(g.f64(2.0), g.Mul(g.f64(RULE_WIDTH), H))))
    thin_down = g.LessOrEqual(across, at_most(g.Max(g.f64(2.0), g.Mul(g.f64(RULE_WIDTH), W))))
    horizontal = g.And(long_across, g.Or(thin_across, long_down))
    vertical = g.And(long_down, g.Or(thin_down, long_across))
    return g.Or(horizontal, vertical)


def _span(g: Builder, profile: str) -> tuple[str, str]:
    """``images._span`` of (B, n) float32 profiles with ``TEXT_TRIM``: (B, 1) float64 first and
    last index."""
    cumulative = g.Cast(g.CumSum(profile, g.i64(1)), to=DOUBLE)
    total = g.ReduceMax(cumulative, g.i64([1]), keepdims=1)
    axis = g.i64([1])
    first = g.ReduceSum(g.Cast(g.LessOrEqual(cumulative, g.Mul(total, g.f64(TEXT_TRIM))), to=DOUBLE), axis, keepdims=1)
    last = g.ReduceSum(g.Cast(g.Less(cumulative, g.Mul(total, g.f64(1 - TEXT_TRIM))), to=DOUBLE), axis, keepdims=1)
    return first, g.Max(first, last)


def _text_rows(g: Builder, rows: str, sizes: Sizes) -> tuple[str, str]:
    """``images._text_line`` on the bands of rows with ink of (B, H) float32 profiles: (B, 1)
    float64 top and bottom (exclusive) of the band of the most ink and the bands that belong to
    it. Bands are numbered 1, 2, ... from the top; slot 0 of each per-band tensor is unused."""
    batch, H = sizes.batch, sizes.height
    with_ink = g.Cast(g.Greater(rows, g.const(0.0)), to=INT64)  # (B, H)
    starts = g.Mul(with_ink, g.Sub(g.i64(1), _shift(g, with_ink, forward=True)))
    ends = g.Mul(with_ink, g.Sub(g.i64(1), _shift(g, with_ink, forward=False)))
    band = g.Mul(g.CumSum(starts, g.i64(1)), with_ink)  # (B, H): its band's number, 0 off them
    row = _arange(g, H, to=FLOAT)
    slots = _vector(g, batch, g.Add(H, g.i64(1)))

    def per_band(values: str) -> str:
        return g.Cast(_scatter_add(g, slots, band, values), to=DOUBLE)  # (B, H + 1)

    mass = per_band(rows)
    top_row = per_band(g.Mul(row, g.Cast(starts, to=FLOAT)))
    end_row = per_band(g.Mul(g.Add(row, g.const(1.0)), g.Cast(ends, to=FLOAT)))
    bands = g.Cast(g.ReduceMax(band, g.i64([1]), keepdims=1), to=DOUBLE)  # (B, 1)
    main = g.ArgMax(mass, axis=1, keepdims=1)  # (B, 1): the band of the most ink, the first of equals
    main_mass = g.GatherElements(mass, main, axis=1)
    main_height = g.Sub(g.GatherElements(end_row, main, axis=1), g.GatherElements(top_row, main, axis=1))
    reach = g.Max(g.f64(1.0), g.Mul(g.f64(0.1), main_height))
    slot, main = _arange(g, g.Add(H, g.i64(1))), g.Cast(main, to=DOUBLE)
    above, below = g.Less(slot, main), g.Greater(slot, main)
    gap = g.Where(
        above, g.Sub(_shift(g, top_row, forward=False), end_row), g.Sub(top_row, _shift(g, end_row, forward=True))
    )
    tall = g.GreaterOrEqual(g.Sub(end_row, top_row), g.Mul(g.f64(0.5), main_height))
    light = g.LessOrEqual(mass, g.Mul(g.f64(0.1), main_mass))
    real = g.And(g.GreaterOrEqual(slot, g.f64(1.0)), g.LessOrEqual(slot, bands))
    apart = g.And(real, g.Not(g.And(g.LessOrEqual(gap, reach), g.Or(tall, light))))  # a band that stops the line
    axis = g.i64([1])
    first = g.ReduceMax(g.Where(g.And(apart, above), g.Add(slot, g.f64(1.0)), g.f64(1.0)), axis, keepdims=1)
    last = g.ReduceMin(g.Where(g.And(apart, below), g.Sub(slot, g.f64(1.0)), bands), axis, keepdims=1)
    top = g.GatherElements(top_row, g.Cast(first, to=INT64), axis=1)
    bottom = g.GatherElements(end_row, g.Cast(last, to=INT64), axis=1)
    return top, bottom


def _between(g: Builder, positions: str, start: str, end: str, axis: int) -> str:
    """(B, n) -> bool start <= position < end, unsqueezed at ``axis`` to broadcast over images."""
    return g.Unsqueeze(g.And(g.GreaterOrEqual(positions, start), g.Less(positions, end)), g.i64([axis]))


def crop_and_resize(g: Builder, grey: str, sizes: Sizes, height: int, width: int) -> str:
    """``images.crop_text`` of (B, H, W) float32 8-bit values, resized to (height, width): the
    text found apart from rules and other lines (``find_text``), the clutter outside its box
    painted with the page, the box padded by ``TEXT_MARGIN`` and framed with the page colour
    where it reaches past the image."""
    batch, H, W = sizes.batch, sizes.height, sizes.width
    ink = ink_mask(g, grey, sizes)
    clutter = g.And(ink, rules(g, ink, sizes))
    text = g.And(ink, g.Not(clutter))
    line_top, line_bottom = _text_rows(g, g.ReduceSum(g.Cast(text, to=FLOAT), g.i64([2]), keepdims=0), sizes)
    row, column = _arange(g, H), _arange(g, W)
    on_line = _between(g, row, line_top, line_bottom, axis=2)
    clutter = g.Or(clutter, g.And(text, g.Not(on_line)))
    text = g.Cast(g.And(text, on_line), to=FLOAT)
    columns = g.ReduceSum(text, g.i64([1]), keepdims=0)  # (B, W)
    found = g.GreaterOrEqual(g.ReduceSum(columns, g.i64([1]), keepdims=1), g.const(4.0))  # (B, 1): not a blank page
    left, right = _span(g, columns)
    top, bottom = _span(g, g.ReduceSum(text, g.i64([2]), keepdims=0))
    right, bottom = g.Add(right, g.f64(1.0)), g.Add(bottom, g.f64(1.0))
    in_box = g.And(_between(g, row, top, bottom, axis=2), _between(g, column, left, right, axis=1))
    painted = g.And(g.And(clutter, g.Not(in_box)), g.Unsqueeze(found, g.i64([2])))
    level = _median(g, grey, batch)
    grey = g.Where(painted, level, grey)
    margin = g.Mul(g.Sub(bottom, top), g.f64(TEXT_MARGIN))
    whole = g.Shape(found)
    box_left = g.Where(found, g.Round(g.Sub(left, margin)), g.f64(0.0))
    box_top = g.Where(found, g.Round(g.Sub(top, margin)), g.f64(0.0))
    box_right = g.Where(found, g.Round(g.Add(right, margin)), g.Expand(g.Cast(W, to=DOUBLE), whole))
    box_bottom = g.Where(found, g.Round(g.Add(bottom, margin)), g.Expand(g.Cast(H, to=DOUBLE), whole))
    box_width, box_height = g.Sub(box_right, box_left), g.Sub(box_bottom, box_top)
    columns_taps = _taps(g, box_width, g.i64(width), box_left, W, shared=False)
    rows_taps = _taps(g, box_height, g.i64(height), box_top, H, shared=False)
    vertical_first = _vertical_first(g, box_width, box_height, g.f64(width), g.f64(height))  # (B, 1)
    # The page colour of the frame is the median of the painted image (crop_to_box), which is
    # the same level: moving pixels to the median leaves it the median.
    return _resize(g, grey, columns_taps, rows_taps, vertical_first, fill=level)


def preparation_model(height: int, width: int, normalize: bool, crop_to_text: bool) -> onnx.ModelProto:
    """The graph ``pixels`` uint8 (B, H, W) grey -> ``images`` float32 (B, 1, height, width) in
    [0, 1]: ``load_image(..., height, width, crop_to_text, normalize)`` of the same grey pixels."""
    g = Builder()
    shape = g.Shape("pixels")
    sizes = Sizes(*(_index(g, shape, i) for i in range(3)))
    grey = g.Cast("pixels", to=FLOAT)
    if normalize:
        grey = normalize_page(g, grey, sizes)
    if crop_to_text:
        grey = crop_and_resize(g, grey, sizes, height, width)
    else:
        H, W = g.Cast(sizes.height, to=DOUBLE), g.Cast(sizes.width, to=DOUBLE)
        vertical_first = _vertical_first(g, W, H, g.f64(width), g.f64(height))
        grey = _resize(
            g,
            grey,
            _whole_axis(g, sizes.width, g.i64(width)),
            _whole_axis(g, sizes.height, g.i64(height)),
            vertical_first,
        )
    g.nodes.append(helper.make_node("Unsqueeze", [g.Div(grey, g.const(255.0)), g.i64([1])], ["images"]))
    graph = helper.make_graph(
        g.nodes,
        "captcha_ocr_preparation",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, ["batch", "height", "width"])],
        [helper.make_tensor_value_info("images", FLOAT, ["batch", 1, height, width])],
        g.initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, producer_name="captcha_ocr"
    )
    onnx.checker.check_model(model, full_check=True)
    return model
