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

Inference on the CPU (float32, autograd off, :attr:`fast_inference` left on) takes
reformulated layers that compute the same outputs, to float round-off, several times faster
than torch's generic ones at these shapes (measured in ``benchmarks/peak.py``):

* SRCNN runs its first layers as matrix products over bands of rows (the 9x9 single-channel
  first layer as im2col + GEMM, whose im2col and features stay in cache), and its
  single-output last layer as one GEMM to the ``f3*f3`` tap images, summed shifted.
* FSRCNN's deconvolution becomes a sub-pixel convolution: the stride-``s`` 9x9 transposed
  convolution is ``s*s`` ordinary convolutions on the LR grid (one per output phase, 3x3 at
  x3/x4, 5x5 at x2) followed by a pixel shuffle; the weights are rearranged from the
  ``deconv`` parameters at each call (the state_dict is unchanged).
* Every network declares :attr:`valid_inference`: ``forward(x, pad=False)`` is a valid pass
  whose centre is exactly what ``pad=True`` computes on an image extended by the reach, so
  ``border="symmetric"`` can skip the per-layer padding (see :func:`srbench.nn.infer.run_model`).
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


def _fast(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether the reformulated inference layers apply: CPU, float32, no autograd."""
    return (
        module.fast_inference
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
    )


def _derived(module: nn.Module, name: str, sources: tuple[torch.Tensor, ...], make):
    """``make()``, cached on ``module`` until one of ``sources`` changes (version or storage).

    For weights rearranged from the parameters at inference (the state_dict keeps the
    parameters as trained); a training step or ``load_state_dict`` bumps their version.
    """
    key = tuple((t._version, t.data_ptr(), t.device, t.dtype) for t in sources)
    cache = module.__dict__.setdefault("_derived_cache", {})
    hit = cache.get(name)
    if hit is None or hit[0] != key:
        hit = cache[name] = (key, make())
    return hit[1]


#: Output pixels per band of SRCNN's CPU pass: a band's im2col (81 values a pixel) and its
#: 64 + 32 feature channels are about 2.5 MB, within a core's L2 cache. Measured on a 2-core
#: EPYC at 510x510: 2048 px 70%, 4096 px 81%, 16384 px 64% of the matmul peak.
_BAND_PIXELS = 4096


def _pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution of a channels-last (N, C, H, W) map as one GEMM, channels-last out.

    oneDNN runs FSRCNN's 56 -> 12 and 12 -> 56 channel 1x1 layers at about 20% of the
    matmul peak; the same product as ``(H*W, C_in) @ (C_in, C_out)`` runs at 50-70%.
    """
    batch, c_in, height, width = x.shape
    c_out = conv.out_channels
    pixels = x.permute(0, 2, 3, 1).reshape(-1, c_in)  # a view when channels-last
    out = torch.addmm(conv.bias, pixels, conv.weight.reshape(c_out, c_in).t())
    return out.view(batch, height, width, c_out).permute(0, 3, 1, 2)


def _first_layer(conv: nn.Conv2d, x: torch.Tensor, weight=None, bias=None) -> torch.Tensor:
    """A convolution of a single-channel (N, 1, H, W) image as im2col + GEMM, channels-last out.

    oneDNN cannot tell a one-channel input's layout apart and returns these first layers in
    NCHW, at about a quarter of the matmul peak, and every later layer then pays for the
    layout. The im2col has only ``k*k`` rows (each the image shifted, copied row by row),
    and the GEMM, reading it transposed, writes channels-last. ``weight``/``bias`` replace
    the layer's own (rearranged versions of them).
    """
    weight = conv.weight if weight is None else weight
    bias = conv.bias if bias is None else bias
    k = conv.kernel_size[0]
    batch, _, height, width = x.shape
    x = x.reshape(batch, height, width)
    out_h, out_w = height - k + 1, width - k + 1
    cols = torch.empty(k, k, batch, out_h, out_w)
    cols.copy_(x.as_strided((k, k, batch, out_h, out_w), (x.stride(1), 1, x.stride(0), x.stride(1), 1)))
    cols = cols.view(k * k, batch * out_h * out_w).t()
    out = torch.addmm(bias, cols, weight.reshape(conv.out_channels, k * k).t())
    return out.view(batch, out_h, out_w, conv.out_channels).permute(0, 3, 1, 2)


def _shifted_tap_sum(taps: torch.Tensor, height: int, width: int, kernel: int) -> torch.Tensor:
    """``sum_t taps[t, y + dy_t, x + dx_t]`` over the ``kernel**2`` tap images.

    ``taps`` is (kernel**2, height + kernel - 1, width + kernel - 1), tap ``t = dy*kernel + dx``:
    a single-output-channel convolution computed as one GEMM to the per-tap products, then
    this sum. Returns (height, width).
    """
    out = taps[0, :height, :width].clone()
    for t in range(1, kernel * kernel):
        dy, dx = divmod(t, kernel)
        out += taps[t, dy : dy + height, dx : dx + width]
    return out


def subpixel_deconv_weights(
    weight: torch.Tensor, stride: int, padding: int
) -> tuple[torch.Tensor, int, int]:
    """A ``ConvTranspose2d`` weight (C, 1, k, k) as ``stride**2`` ordinary convolutions.

    Output pixel ``o = s*m + r`` (r = 0..s-1 on each axis) of a stride-``s`` transposed
    convolution with padding ``p`` is ``sum_j x[m + a_r - j] * w[s*j + b_r]`` with
    ``(a_r, b_r) = divmod(r + p, s)``: a correlation of the input with the taps
    ``w[b_r], w[s + b_r], ...`` reversed. Returns the weight (s*s, C, D, D) of the convolution
    whose output channel ``ry*s + rx`` is phase (ry, rx) (``F.pixel_shuffle``'s order) and the
    input offsets ``(lo, hi)`` it reads: output LR position ``m`` uses inputs ``m+lo .. m+hi``
    (``D = hi - lo + 1``; taps a phase lacks are zero).
    """
    s = int(stride)
    k = weight.shape[-1]
    phases = []
    for r in range(s):
        a, b = divmod(r + padding, s)
        phases.append((a, b, -(-(k - b) // s)))  # taps s*j + b < k
    lo = min(a - n + 1 for a, _, n in phases)
    hi = max(a for a, _, _ in phases)
    size = hi - lo + 1
    index = torch.full((s, size), k, dtype=torch.long)  # k: the zero tap appended below
    for r, (a, b, n) in enumerate(phases):
        for j in range(n):
            index[r, a - j - lo] = s * j + b
    w = F.pad(weight[:, 0], (0, 1, 0, 1))  # (C, k+1, k+1), last row and column zero
    index = index.to(weight.device)
    taps = w[:, index[:, None, :, None], index[None, :, None, :]]  # (C, s, s, D, D)
    return taps.permute(1, 2, 0, 3, 4).reshape(s * s, weight.shape[0], size, size), lo, hi


def subpixel_deconv(deconv: nn.ConvTranspose2d, x: torch.Tensor, crop: int = 0) -> torch.Tensor:
    """``deconv(x)`` with ``crop * stride`` outputs cut from every side, as sub-pixel convolution.

    The same sums as the transposed convolution (single output channel, square stride,
    kernel and padding, ``output_padding`` making the output ``stride`` times the input), in a
    different order: a convolution to ``stride**2`` phase channels on the LR grid and a pixel
    shuffle. Only the kept LR positions ``crop .. n - crop`` are computed; inputs the
    transposed convolution would not have (beyond ``x``) count as zero, as there.
    """
    s = deconv.stride[0]
    weight, lo, hi = _derived(
        deconv,
        "subpixel",
        (deconv.weight,),
        lambda: _channels_last(subpixel_deconv_weights(deconv.weight, s, deconv.padding[0])),
    )
    extra = deconv.kernel_size[0] + deconv.output_padding[0] - 2 * deconv.padding[0] - s
    if extra != 0:
        raise ValueError("subpixel_deconv needs a deconvolution whose output is stride x its input")
    n_h, n_w = x.shape[-2:]
    # Kept position m reads inputs m+lo .. m+hi: rows crop+lo .. n-crop+hi (exclusive end),
    # zeros where those fall outside x.
    start = crop + lo
    before, after = max(0, -start), max(0, hi - crop)
    x = x[..., max(start, 0) : min(n_h - crop + hi, n_h), max(start, 0) : min(n_w - crop + hi, n_w)]
    if before or after:
        x = F.pad(x, (before, after, before, after))
    bias = deconv.bias.expand(s * s) if deconv.bias is not None else None
    return F.pixel_shuffle(F.conv2d(x, weight, bias), s)


def _channels_last(rearranged: tuple) -> tuple:
    weight, *rest = rearranged
    return (weight.contiguous(memory_format=torch.channels_last), *rest)


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
    #: Use the reformulated CPU inference layers (see the module docstring).
    fast_inference = True
    #: ``forward(x, pad=False)`` is a valid pass (see :func:`srbench.nn.infer.run_model`).
    valid_inference = True

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
        if _fast(self, x) and x.shape[1] == 1:
            return torch.stack([self._forward_cpu(image[0], pad) for image in x])[:, None]
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3)):
            if pad:
                x = _pad(x, conv.kernel_size[0])
            x = conv(x)
            if i < 2:
                x = F.relu(x, inplace=True)
        return x

    def _forward_cpu(self, image: torch.Tensor, pad: bool) -> torch.Tensor:
        """One (H, W) image through the network as GEMMs (CPU inference; same outputs).

        Layer 1 (one input channel) is an im2col, ``f1*f1`` rows, times the (n1, f1*f1)
        filters; layer 3 (one output channel) is a GEMM to the ``f3*f3`` tap images, summed
        shifted. With a 1x1 layer 2 all three GEMMs run band by band (rows of about
        :data:`_BAND_PIXELS` pixels), so a band's im2col and features stay in cache; a wider
        layer 2 (90% of SRCNN 9-5-5's arithmetic) goes to oneDNN on the whole channels-last
        feature map, which runs it near peak. Replicate padding (``pad=True``) of layer 3's
        input commutes with the per-pixel products before the tap sum, so the tap images are
        computed for the edge columns twice and the edge rows copied, instead of padding 32
        feature channels.
        """
        f1, f2, f3 = self.kernels
        image = _pad(image[None], f1)[0] if pad else image.contiguous()
        taps = self._taps_banded(image, f3 // 2 if pad else 0) if f2 == 1 else self._taps_wide(image, pad)
        height, width = taps.shape[1] - f3 + 1, taps.shape[2] - f3 + 1
        return _shifted_tap_sum(taps, height, width, f3) + self.conv3.bias

    def _taps_banded(self, image: torch.Tensor, e: int) -> torch.Tensor:
        """Layer 3's tap images of a 9-1-5 network, extended by ``e`` (replicate) per side."""
        c1, c2, c3 = self.conv1, self.conv2, self.conv3
        f1, _, f3 = self.kernels
        n1, n2 = c1.out_channels, c2.out_channels
        height, width = image.shape[0] - f1 + 1, image.shape[1] - f1 + 1
        wide = width + 2 * e
        w1, b1 = c1.weight.reshape(n1, f1 * f1), c1.bias[:, None]
        w2, b2 = c2.weight.reshape(n2, n1), c2.bias[:, None]
        w3 = c3.weight[0].permute(1, 2, 0).reshape(f3 * f3, n2)
        taps = torch.empty(f3 * f3, height + 2 * e, wide)
        rows = max(1, min(height, _BAND_PIXELS // wide))
        cols = torch.empty(f1 * f1, rows, wide)
        feat1, feat2 = torch.empty(n1, rows * wide), torch.empty(n2, rows * wide)
        stride = image.stride(0)
        for top in range(0, height, rows):
            n_rows = min(rows, height - top)
            n = n_rows * wide
            band = cols[:, :n_rows]
            # im2col: row (dy, dx) of the band is the image shifted by (dy, dx); the e
            # columns beyond each side repeat the edge column's window.
            band[:, :, e : e + width].view(f1, f1, n_rows, width).copy_(
                image[top:].as_strided((f1, f1, n_rows, width), (stride, 1, stride, 1))
            )
            if e:
                band[:, :, :e] = band[:, :, e : e + 1]
                band[:, :, e + width :] = band[:, :, e + width - 1 : e + width]
            h1 = torch.addmm(b1, w1, band.reshape(f1 * f1, n), out=feat1[:, :n]).relu_()
            h2 = torch.addmm(b2, w2, h1, out=feat2[:, :n]).relu_()
            torch.mm(w3, h2, out=taps[:, e + top : e + top + n_rows].view(f3 * f3, n))
        if e:
            taps[:, :e] = taps[:, e : e + 1]
            taps[:, e + height :] = taps[:, e + height - 1 : e + height]
        return taps

    def _taps_wide(self, image: torch.Tensor, pad: bool) -> torch.Tensor:
        """Layer 3's tap images (padded when ``pad``) with a k x k layer 2 run by oneDNN."""
        c1, c2, c3 = self.conv1, self.conv2, self.conv3
        f1, f2, f3 = self.kernels
        n1, n2 = c1.out_channels, c2.out_channels
        height, width = image.shape[0] - f1 + 1, image.shape[1] - f1 + 1
        w1 = c1.weight.reshape(n1, f1 * f1).t()
        rows = max(1, min(height, _BAND_PIXELS // width))
        cols = torch.empty(rows * width, f1 * f1)
        features = torch.empty(height * width, n1)  # channels-last
        stride = image.stride(0)
        for top in range(0, height, rows):
            n = min(rows, height - top) * width
            band = cols[:n]
            band.view(n // width, width, f1, f1).copy_(
                image[top:].as_strided((n // width, width, f1, f1), (stride, 1, stride, 1))
            )
            torch.addmm(c1.bias, band, w1, out=features[top * width : top * width + n]).relu_()
        h1 = features.view(1, height, width, n1).permute(0, 3, 1, 2)
        if pad:
            h1 = _pad(h1, f2)
        weight = c2.weight.contiguous(memory_format=torch.channels_last)
        h2 = F.conv2d(h1.contiguous(memory_format=torch.channels_last), weight, c2.bias).relu_()
        height, width = h2.shape[-2:]
        h2 = h2.permute(0, 2, 3, 1).reshape(height * width, n2)
        taps = torch.mm(c3.weight[0].permute(1, 2, 0).reshape(f3 * f3, n2), h2.t())
        taps = taps.view(1, f3 * f3, height, width)
        if pad:
            taps = _pad(taps, f3)
        return taps[0]

    #: Parameters of the output layer (the papers train it 10x slower; see TrainConfig).
    output_params = ("conv3.weight", "conv3.bias")


class ESPCN(nn.Module):
    """ESPCN 5-3-3 (64, 32 filters), tanh, periodic shuffle to HR; all work in LR space."""

    hr_crop = 0
    fast_inference = True
    valid_inference = True

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
        if _fast(self, x):
            return F.pixel_shuffle(self._forward_cpu(x, pad), self.scale)
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

    def _forward_cpu(self, x: torch.Tensor, pad: bool) -> torch.Tensor:
        """The layers before the shuffle, with tanh as a sigmoid (CPU inference; same outputs).

        torch's CPU tanh costs 10x its sigmoid (a third of ESPCN's time). With
        ``tanh(z) = 2*sigmoid(2z) - 1``, each layer computes ``sigmoid(2z)`` with its weights
        and bias doubled (exact in floating point) and the next layer takes the affine map
        ``2s - 1`` into its own weights (``w -> 2w``, ``b -> b - sum(w)``), which is exact
        for the same reason replicate padding commutes with it: every input pixel, padded or
        not, goes through the same map.
        """
        x = x.contiguous(memory_format=torch.channels_last)
        convs = (self.conv1, self.conv2, self.conv3)
        params = tuple(t for conv in convs for t in (conv.weight, conv.bias))
        for i, (conv, (weight, bias)) in enumerate(
            zip(convs, _derived(self, "sigmoid_form", params, self._sigmoid_form))
        ):
            if pad:
                x = _pad(x, conv.kernel_size[0])
            x = _first_layer(conv, x, weight, bias) if i == 0 else F.conv2d(x, weight, bias)
            if i < 2:
                x = x.sigmoid_()
        return x

    def _sigmoid_form(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, bias) of each layer for :meth:`_forward_cpu` (channels-last weights)."""
        out = []
        for i, conv in enumerate((self.conv1, self.conv2, self.conv3)):
            weight, bias = conv.weight, conv.bias
            if i > 0:  # the input is s = (tanh + 1) / 2 of the previous layer
                bias = bias - weight.sum(dim=(1, 2, 3))
                weight = 2 * weight
            if i < 2:  # this layer's output goes through sigmoid(2z)
                weight, bias = 2 * weight, 2 * bias
            out.append((weight.contiguous(memory_format=torch.channels_last), bias))
        return out


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

    fast_inference = True
    valid_inference = True

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
        fast = _fast(self, x)
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)
        for layer in self.body:
            if pad and isinstance(layer, nn.Conv2d):
                x = _pad(x, layer.kernel_size[0])
            if fast and isinstance(layer, nn.Conv2d) and layer.in_channels == 1:
                x = _first_layer(layer, x)
            elif fast and isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1):
                x = _pointwise(layer, x)
            else:
                x = layer(x)
        if not pad:
            c = self.hr_crop
            if fast:
                # Whole LR positions by sub-pixel convolution, the rest of the crop after.
                y = subpixel_deconv(self.deconv, x, crop=c // self.scale)
                c %= self.scale
            else:
                y = self.deconv(x)
            return y[..., c : y.shape[-2] - c, c : y.shape[-1] - c]
        # Test time: extend the features so border outputs get all their contributions,
        # then cut the extra off.
        r = _DECONV_REACH
        x = F.pad(x, (r, r, r, r), mode="replicate")
        if fast:
            return subpixel_deconv(self.deconv, x, crop=r)
        y = self.deconv(x)
        c = r * self.scale
        return y[..., c : y.shape[-2] - c, c : y.shape[-1] - c]

    output_params = ("deconv.weight", "deconv.bias")

    def architecture_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The layers as the paper counts them: same-size convolutions, the deconvolution on
        the LR grid (for MAC counts; test time also runs it on a replicate-extended border)."""
        for layer in self.body:
            if isinstance(layer, nn.Conv2d):
                x = _pad(x, layer.kernel_size[0])
            x = layer(x)
        return self.deconv(x)


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


