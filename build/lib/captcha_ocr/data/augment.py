"""Train-time augmentation applied to whole batches, on the device the batch lives on."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RandomAffine(nn.Module):
    """Random shift, rotation and scale of each image in a batch.

    Pixels moved in from outside the image repeat the border, which in captchas is background.

    Args:
        max_shift: Largest shift in pixels, horizontally and vertically.
        max_rotation: Largest rotation in degrees, either way.
        max_scale: Largest relative zoom, in or out (0.1 = 90 % to 110 %).
    """

    def __init__(self, max_shift: float = 4.0, max_rotation: float = 0.0, max_scale: float = 0.0) -> None:
        super().__init__()
        self.max_shift = max_shift
        self.max_rotation = max_rotation
        self.max_scale = max_scale

    def forward(self, images: Tensor) -> Tensor:
        B, _, H, W = images.shape  # batch, channels, height, width
        uniform = torch.rand(B, 4, device=images.device) * 2 - 1  # (B, 4) in [-1, 1]
        angle = uniform[:, 0] * math.radians(self.max_rotation)
        scale = 1 + uniform[:, 1] * self.max_scale
        # affine_grid works in [-1, 1] coordinates: a shift of s pixels is 2 s / size.
        shift_x = uniform[:, 2] * self.max_shift * 2 / W
        shift_y = uniform[:, 3] * self.max_shift * 2 / H
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        aspect = H / W  # rotate in pixel space, not in the stretched [-1, 1] square
        theta = torch.stack(
            [
                torch.stack([cos, -sin * aspect, shift_x], dim=1),
                torch.stack([sin / aspect, cos, shift_y], dim=1),
            ],
            dim=1,
        )  # (B, 2, 3)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


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
