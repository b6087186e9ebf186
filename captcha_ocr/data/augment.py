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
