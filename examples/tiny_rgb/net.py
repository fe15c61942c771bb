"""TinySR: a small RGB-to-RGB network, the shape of what people bring to srbench.

ESPCN-like: three convolutions in LR space with zero padding ("same" size, like EDSR and
its successors) and a pixel shuffle to HR, plus a bicubic-free global skip (the LR image
repeated to every sub-pixel), so the layers learn the residual. RGB in [0, 1].
"""

import torch
from torch import nn


class TinySR(nn.Module):
    def __init__(self, scale: int = 4, features: int = 32) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, features, 5, padding=2),
            nn.PReLU(features),
            nn.Conv2d(features, features // 2, 3, padding=1),
            nn.PReLU(features // 2),
            nn.Conv2d(features // 2, 3 * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x.repeat_interleave(self.scale * self.scale, dim=1)
        return self.shuffle(self.body(x) + skip)
