"""Train-time augmentation applied to whole batches, on the device the batch lives on.

Kornia does the geometric and photometric changes. The policy is a list of operations in a
config (``data.augmentations`` in ``configs/crnn.yaml``), each applied to an image with its own
probability and at a magnitude drawn for that image, so that every image gets its own few
changes (the RandAugment / STRAug idea). Written here is only what
Kornia lacks: ``RandomLines`` (an extra noise line), ``RandomStrokeWidth`` (the weights of a
font, light to heavy), ``OnGrey`` (an RGB-only operation on grey batches) and ``OnInverted`` (a
warp that fills with the page, not black).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RandomLines(nn.Module):
    """Draw a random dark straight line across some images of a batch.

    The data set's captchas carry a noise line that, where it crosses a glyph, adds or hides a
    stroke; extra lines teach the model to see past them.

    Args:
        probability: Share of images that get a line.
        max_width: Largest line width in input pixels (each line's width is uniform in
            ``[1, max_width]``).
        darkness: Intensity of the line, 0 (black) to 1 (white).
    """

    def __init__(self, probability: float = 0.5, max_width: float = 2.0, darkness: float = 0.1) -> None:
        super().__init__()
        self.probability = probability
        self.max_width = max_width
        self.darkness = darkness

    def forward(self, images: Tensor) -> Tensor:
        B, _, H, W = images.shape  # batch, channels, height, width
        device, dtype = images.device, images.dtype
        x0, x1 = (torch.rand(2, B, 1, 1, device=device, dtype=dtype) * W).unbind(0)  # (B, 1, 1) each
        y0, y1 = (torch.rand(2, B, 1, 1, device=device, dtype=dtype) * H).unbind(0)
        width = 1 + torch.rand(B, 1, 1, device=device, dtype=dtype) * (self.max_width - 1)
        dx = torch.arange(W, device=device, dtype=dtype).view(1, 1, W) - x0  # (B, 1, W)
        dy = torch.arange(H, device=device, dtype=dtype).view(1, H, 1) - y0  # (B, H, 1)
        ux, uy = x1 - x0, y1 - y0
        length = (ux.square() + uy.square()).sqrt().clamp(min=1e-3)
        distance = (ux * dy - uy * dx).abs() / length  # (B, H, W): to the line through both points
        along = (ux * dx + uy * dy) / length.square()  # (B, H, W): 0 at the start, 1 at the end
        chosen = torch.rand(B, 1, 1, device=device) < self.probability
        drawn = (distance <= width / 2) & (along >= 0) & (along <= 1) & chosen  # (B, H, W)
        return images.masked_fill(drawn[:, None] & (images > self.darkness), self.darkness)


class RandomStrokeWidth(nn.Module):
    """Make the ink of some images thinner or bolder, by a width drawn for each image: the weights
    of a font from light to heavy, at the model's input resolution.

    A chosen image is thinned by 0.5, 1, ... ``thinner`` pixels, or made bolder by 0.5, 1, ...
    ``bolder`` pixels (each side on half of the chosen images, each width equally likely): at
    twice the size, a grey-scale dilation (the page eats into the ink) or erosion (the dark ink
    spreads) over a square one pixel wider than twice the change, then back down by averaging,
    so that half a pixel is a step and thin strokes fade as a lighter weight drawn small does.

    Args:
        probability: Share of images changed.
        thinner: Largest width taken off each stroke, in input pixels (a multiple of 0.5).
        bolder: Largest width added to each stroke, likewise.
    """

    def __init__(self, probability: float = 0.3, thinner: float = 1.5, bolder: float = 3.0) -> None:
        super().__init__()
        for name, width in (("thinner", thinner), ("bolder", bolder)):
            if width < 0.5 or (2 * width) % 1:
                raise ValueError(f"{name} must be a positive multiple of 0.5 pixels, got {width}")
        self.probability = probability
        self.thinner = thinner
        self.bolder = bolder

    def forward(self, images: Tensor) -> Tensor:
        B = images.size(0)
        chosen = torch.rand(B, device=images.device) < self.probability  # (B,)
        if not chosen.any():
            return images
        picked = images[chosen]  # (b, 1, H, W)
        b = picked.size(0)
        # each image's change in half pixels at the input size: negative thins, positive bolds
        bolder = torch.rand(b, device=images.device) < 0.5
        limit = torch.where(bolder, 2 * self.bolder, 2 * self.thinner)  # (b,)
        steps = (1 + (torch.rand(b, device=images.device) * limit).floor()).long()  # (b,) in 1..limit
        double = F.interpolate(picked, scale_factor=2, mode="bilinear", align_corners=False)  # (b, 1, 2H, 2W)
        changed = picked.clone()
        for step in steps.unique().tolist():
            k = step + 1  # a square of k pixels moves each edge of a stroke by (k - 1) / 2
            padded = F.pad(double, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), mode="replicate")
            for makes_bolder in (False, True):
                which = (steps == step) & (bolder == makes_bolder)
                if not which.any():
                    continue
                part = padded[which]
                filtered = -F.max_pool2d(-part, k, stride=1) if makes_bolder else F.max_pool2d(part, k, stride=1)
                changed[which] = F.avg_pool2d(filtered, 2)  # (n, 1, H, W)
        out = images.clone()
        out[chosen] = changed
        return out


class Around(nn.Module):
    """An augmentation run on a transformed batch (``OnGrey``, ``OnInverted``): the wrapped
    module keeps its own probability per image.

    Args:
        augmentation: The augmentation to run.
    """

    def __init__(self, augmentation: nn.Module) -> None:
        super().__init__()
        self.augmentation = augmentation


class OnGrey(Around):
    """Run a Kornia augmentation that takes RGB batches (``RandomJPEG``) on grey ones: the grey
    channel is repeated into three and the result averaged back."""

    def forward(self, images: Tensor) -> Tensor:
        rgb = images.clamp(0, 1).expand(-1, 3, -1, -1)  # (B, 3, H, W)
        return self.augmentation(rgb).mean(dim=1, keepdim=True)  # (B, 1, H, W)


class OnInverted(Around):
    """Run a geometric augmentation on the inverted batch and invert back, so that where it
    fills in beyond the image (Kornia's perspective fills with black) it fills with the page."""

    def forward(self, images: Tensor) -> Tensor:
        return 1 - self.augmentation(1 - images)
