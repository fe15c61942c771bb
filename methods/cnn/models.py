"""The CNN architectures, in PyTorch (imported lazily: this module imports torch).

Every network has two modes selected by ``forward(x, pad=...)``:

* ``pad=False`` (training): valid convolutions, so every output pixel sees only real image
  content of its sub-image and the label is the matching centre crop
  (:attr:`margin` LR or input pixels per side, plus :attr:`hr_crop` HR pixels).
* ``pad=True`` (test): replicate padding before every convolution, like the reference
  MATLAB code's ``imfilter(x, w, 'same', 'replicate')``, so the output is full size.

:attr:`reach` is how many input pixels beyond its own position an output depends on; an
input extended by that much on every side (see :func:`srbench.nn.infer.run_model`) lets
the test-time pass compute every kept output exactly as a valid training pass would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ESPCN", "FSRCNN", "SRCNN", "build_model"]


def _pad(x: torch.Tensor, kernel: int) -> torch.Tensor:
    half = kernel // 2
    if half == 0:
        return x
    return F.pad(x, (half, half, half, half), mode="replicate")


class SRCNN(nn.Module):
    """SRCNN f1-f2-f3 with n1/n2 filters on the bicubic-enlarged luminance.

    Parameters
    ----------
    kernels : tuple of int
        (f1, f2, f3): (9, 1, 5) for the ECCV model, (9, 5, 5) for SRCNN-Ex.
    filters : tuple of int
        (n1, n2).
    """

    hr_crop = 0

    def __init__(self, kernels=(9, 1, 5), filters=(64, 32)) -> None:
        super().__init__()
        f1, f2, f3 = kernels
        n1, n2 = filters
        self.kernels = tuple(kernels)
        self.conv1 = nn.Conv2d(1, n1, f1)
        self.conv2 = nn.Conv2d(n1, n2, f2)
        self.conv3 = nn.Conv2d(n2, 1, f3)
        self.margin = sum(k // 2 for k in self.kernels)
        self.reach = self.margin
        # He init for the ReLU layers (trains much faster with Adam than the paper's
        # N(0, 0.001^2)); the paper's small init for the linear reconstruction layer.
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.conv3.weight, std=1e-3)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, x: torch.Tensor, pad: bool = False) -> torch.Tensor:
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3)):
            if pad:
                x = _pad(x, conv.kernel_size[0])
            x = conv(x)
            if i < 2:
                x = F.relu(x, inplace=True)
        return x

    #: Parameters of the output layer (the papers train it 10x slower; see TrainConfig).
    output_params = ("conv3.weight", "conv3.bias")


class ESPCN(nn.Module):
    """ESPCN 5-3-3 (64, 32 filters), tanh, periodic shuffle to HR; all work in LR space."""

    hr_crop = 0

    def __init__(self, scale: int, kernels=(5, 3, 3), filters=(64, 32)) -> None:
        super().__init__()
        f1, f2, f3 = kernels
        n1, n2 = filters
        self.scale = int(scale)
        self.conv1 = nn.Conv2d(1, n1, f1)
        self.conv2 = nn.Conv2d(n1, n2, f2)
        self.conv3 = nn.Conv2d(n2, self.scale**2, f3)
        self.margin = sum(k // 2 for k in kernels)
        self.reach = self.margin  # the pixel shuffle only rearranges channels
        # Fan-in scaling (std = gain / sqrt(fan_in)): Xavier's fan-in + fan-out average
        # makes the first layer's pre-activations ~0.1 on [0, 1] images, where tanh is
        # linear; the network then settles on a linear interpolator and stays there.
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="tanh")
            nn.init.zeros_(conv.bias)
        nn.init.kaiming_normal_(self.conv3.weight, mode="fan_in", nonlinearity="linear")
        nn.init.zeros_(self.conv3.bias)

    def forward(self, x: torch.Tensor, pad: bool = False) -> torch.Tensor:
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3)):
            if pad:
                x = _pad(x, conv.kernel_size[0])
            x = conv(x)
            if i < 2:
                x = torch.tanh(x)
        # Pixel shuffle puts LR pixel i's s outputs at HR s*i .. s*i+s-1, whose centre
        # s*i + (s-1)/2 is exactly where MATLAB imresize puts LR pixel i: no offset to fix.
        return F.pixel_shuffle(x, self.scale)

    output_params = ("conv3.weight", "conv3.bias")


def deconv_geometry(scale: int, kernel: int = 9) -> tuple[int, int, int]:
    """(padding, output_padding, hr_crop) of a stride-``scale`` deconvolution.

    ``padding`` and ``output_padding`` make the output exactly ``scale * n`` for ``n`` inputs
    and put the kernel centre of input ``i`` at HR pixel ``scale*i + (scale-1)//2`` (at x3:
    ``3i + 1``, MATLAB imresize's own centre, so no shave_x3-style correction is needed).
    ``hr_crop`` is how many outputs per side miss a contribution from outside the input.
    """
    output_padding = (kernel - scale) % 2
    padding = (kernel - scale + output_padding) // 2
    top = max(0, kernel - padding - scale)
    bottom = padding
    return padding, output_padding, max(top, bottom)


#: LR pixels each side that a 9-tap deconvolution at stride 2-4 reads around an output's own.
_DECONV_REACH = 2


class FSRCNN(nn.Module):
    """FSRCNN (d, s, m): feature extraction, shrinking, m mappings, expanding, deconvolution.

    Parameters
    ----------
    scale : int
    d, s, m : int
        (56, 12, 4) for FSRCNN, (32, 5, 1) for FSRCNN-s.
    """

    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        self.scale = int(scale)
        layers: list[nn.Module] = [nn.Conv2d(1, d, 5), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        padding, output_padding, self.hr_crop = deconv_geometry(self.scale)
        self.deconv = nn.ConvTranspose2d(
            d, 1, 9, stride=self.scale, padding=padding, output_padding=output_padding
        )
        self.margin = 2 + m
        self.reach = self.margin + _DECONV_REACH
        for layer in self.body:
            if isinstance(layer, nn.Conv2d):
                # He init for PReLU with its initial slope 0.25 (the paper's choice).
                nn.init.kaiming_normal_(layer.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.deconv.weight, std=1e-3)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: torch.Tensor, pad: bool = False) -> torch.Tensor:
        for layer in self.body:
            if pad and isinstance(layer, nn.Conv2d):
                x = _pad(x, layer.kernel_size[0])
            x = layer(x)
        if not pad:
            y = self.deconv(x)
            c = self.hr_crop
            return y[..., c : y.shape[-2] - c, c : y.shape[-1] - c]
        # Test time: extend the features so border outputs get all their contributions,
        # then cut the extra off.
        r = _DECONV_REACH
        x = F.pad(x, (r, r, r, r), mode="replicate")
        y = self.deconv(x)
        c = r * self.scale
        return y[..., c : y.shape[-2] - c, c : y.shape[-1] - c]

    output_params = ("deconv.weight", "deconv.bias")


def build_model(arch: str, scale: int, **kwargs) -> nn.Module:
    """Construct a network by architecture name ("srcnn", "espcn", "fsrcnn")."""
    if arch == "srcnn":
        return SRCNN(**kwargs)
    if arch == "espcn":
        return ESPCN(scale, **kwargs)
    if arch == "fsrcnn":
        return FSRCNN(scale, **kwargs)
    raise ValueError(f"unknown architecture {arch!r}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


