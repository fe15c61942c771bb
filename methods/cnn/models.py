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
* FSRCNN runs its wide layers band by band, never holding a 56-channel map for the whole
  image: the first layer (im2col + GEMM) and the shrinking layer, then, after the mapping
  layers, the expanding layer and the stride-``s`` 9x9 deconvolution as one GEMM to its 81
  tap images, each added at its LR offset into one of the ``s*s`` output phases
  (:func:`subpixel_deconv_taps`; :func:`subpixel_deconv` is the same identity as ``s*s``
  convolutions and a pixel shuffle). Rearranged weights are derived from the parameters
  and cached (the state_dict is unchanged).
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


def _band_rows(rows: int, width: int, pixels: int, least: int = 1) -> int:
    """Rows per band for ``rows`` rows of ``width`` pixels, bands of at most about ``pixels``.

    The bands are as even as their count allows (a last band of a row or two would cost a
    pass of per-band calls for almost no work), and at least ``least`` rows.
    """
    bands = -(-rows // max(1, pixels // max(1, width)))
    return max(least, -(-rows // max(1, bands)))


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


def _subpixel_phases(stride: int, kernel: int, padding: int) -> tuple[list, int, int]:
    """The phases of a stride-``s`` transposed convolution: per phase ``r``, ``(a_r, b_r, n_r)``.

    Output pixel ``o = s*m + r`` (r = 0..s-1 on each axis) with padding ``p`` is
    ``sum_j x[m + a_r - j] * w[s*j + b_r]`` over the ``n_r`` taps ``s*j + b_r < k``, with
    ``(a_r, b_r) = divmod(r + p, s)``. Also returns the input offsets ``(lo, hi)`` any phase
    reads: output LR position ``m`` uses inputs ``m+lo .. m+hi``.
    """
    s = int(stride)
    phases = []
    for r in range(s):
        a, b = divmod(r + padding, s)
        phases.append((a, b, -(-(kernel - b) // s)))  # taps s*j + b < k
    lo = min(a - n + 1 for a, _, n in phases)
    hi = max(a for a, _, _ in phases)
    return phases, lo, hi


def subpixel_deconv_weights(
    weight: torch.Tensor, stride: int, padding: int
) -> tuple[torch.Tensor, int, int]:
    """A ``ConvTranspose2d`` weight (C, 1, k, k) as ``stride**2`` ordinary convolutions.

    Output pixel ``o = s*m + r`` of a stride-``s`` transposed convolution is a correlation
    of the input with the taps ``w[b_r], w[s + b_r], ...`` reversed (see
    :func:`_subpixel_phases`). Returns the weight (s*s, C, D, D) of the convolution whose
    output channel ``ry*s + rx`` is phase (ry, rx) (``F.pixel_shuffle``'s order) and the
    input offsets ``(lo, hi)`` it reads: output LR position ``m`` uses inputs ``m+lo .. m+hi``
    (``D = hi - lo + 1``; taps a phase lacks are zero).
    """
    s = int(stride)
    k = weight.shape[-1]
    phases, lo, hi = _subpixel_phases(s, k, padding)
    size = hi - lo + 1
    index = torch.full((s, size), k, dtype=torch.long)  # k: the zero tap appended below
    for r, (a, b, n) in enumerate(phases):
        for j in range(n):
            index[r, a - j - lo] = s * j + b
    w = F.pad(weight[:, 0], (0, 1, 0, 1))  # (C, k+1, k+1), last row and column zero
    index = index.to(weight.device)
    taps = w[:, index[:, None, :, None], index[None, :, None, :]]  # (C, s, s, D, D)
    return taps.permute(1, 2, 0, 3, 4).reshape(s * s, weight.shape[0], size, size), lo, hi


def subpixel_deconv_taps(weight: torch.Tensor, stride: int, padding: int) -> tuple:
    """A ``ConvTranspose2d`` weight (C, 1, k, k) as ``k*k`` tap filters, by offset and phase.

    Each kernel tap ``(ky, kx)`` serves exactly one output phase ``(ry, rx)``, reading the
    input at one offset ``(lo + oy, lo + ox)`` from the output's LR position (see
    :func:`_subpixel_phases`). So a GEMM of the ``k*k`` filters with the input's channels
    gives every product the deconvolution sums once (the sub-pixel convolution's weights
    are zero for 19% of their taps at x2 and 44% at x4), and each phase image is a sum of
    tap images shifted by their offset. On each axis phase ``r`` reads the offsets
    ``a_r - n_r + 1 .. a_r``, both ends non-decreasing in ``r``, so the phases one offset
    serves are a contiguous range; consecutive offsets serving the same range form a run
    (all three offsets at x3; four of the five at x2), and a pair of runs (across, down)
    is a group: its taps fill a block of the phase grid for each of its offsets.

    Returns
    -------
    filters : Tensor (k*k, C)
        One row per tap, by group, then by offset (``oy``, ``ox``), then phase (``ry``,
        ``rx``).
    lo, hi : int
        The input offsets read, as for :func:`subpixel_deconv_weights`.
    groups : list of tuple
        ``(oy, noy, ox, nox, ry, nry, rx, nrx, row)``: the offsets ``lo + oy ..`` (``noy`` of
        them) down and ``lo + ox ..`` across each serve the phases ``ry .. ry + nry - 1``
        down and ``rx .. rx + nrx - 1`` across, with filter rows from ``row`` on.
    """
    s = int(stride)
    k = weight.shape[-1]
    phases, lo, hi = _subpixel_phases(s, k, padding)
    # Per axis and offset: the first phase reading it, how many do, and their kernel taps.
    served = []
    for o in range(hi - lo + 1):
        taps = [(r, s * j + b) for r, (a, b, n) in enumerate(phases) if 0 <= (j := a - lo - o) < n]
        served.append((taps[0][0], len(taps), [t for _, t in taps]))
    runs: list[list[int]] = []  # [first offset, offsets, first phase, phases]
    for o, (r0, n, _) in enumerate(served):
        if runs and runs[-1][2:] == [r0, n]:
            runs[-1][1] += 1
        else:
            runs.append([o, 1, r0, n])
    w = weight[:, 0]
    # Per run, the kernel taps of its (offset, phase) pairs.
    index = [torch.tensor([served[o][2] for o in range(o0, o0 + n)]) for o0, n, _, _ in runs]
    index = [i.to(w.device) for i in index]
    filters, groups, row = [], [], 0
    for (oy, noy, ry, nry), ty in zip(runs, index):
        for (ox, nox, rx, nrx), tx in zip(runs, index):
            block = w[:, ty[:, None, :, None], tx[None, :, None, :]]  # (C, noy, nox, nry, nrx)
            filters.append(block.permute(1, 2, 3, 4, 0).reshape(-1, w.shape[0]))
            groups.append((oy, noy, ox, nox, ry, nry, rx, nrx, row))
            row += noy * nox * nry * nrx
    return torch.cat(filters).contiguous(), lo, hi, groups


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
        if _fast(self, x) and x.shape[1] == 1:
            if x.shape[0] == 1:
                return self._forward_cpu(x[0, 0], pad)[None, None]
            return torch.stack([self._forward_cpu(image[0], pad) for image in x])[:, None]
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
        y = self.deconv(F.pad(x, (r, r, r, r), mode="replicate"))
        c = r * self.scale
        return y[..., c : y.shape[-2] - c, c : y.shape[-1] - c]

    def _forward_cpu(self, image: torch.Tensor, pad: bool) -> torch.Tensor:
        """One (H, W) image through the network, the wide layers band by band (CPU inference).

        The same outputs as the layers, to float round-off, without ever holding a
        ``d``-channel feature map for the whole image (at 56 channels those maps are 224
        bytes a pixel, and moving them cost about half the layer-by-layer pass):

        * :meth:`_head`, over bands of rows: the first layer as im2col + GEMM, its PReLU
          and the shrinking 1x1 layer as a GEMM, into the ``s``-channel map;
        * the ``m`` mapping layers on the whole ``s``-channel map, by oneDNN (channels-last);
        * :meth:`_tail`, over bands of rows: the expanding 1x1 layer and its PReLU, a GEMM
          to the deconvolution's ``k*k`` tap images (:func:`subpixel_deconv_taps`), each
          added shifted into the output phases, and the phases interleaved into the output.

        With ``pad=True`` the image is replicate-padded for the first layer as there, and the
        ``s``-channel map by the deconvolution's reach: replicate padding commutes with the
        per-pixel expanding layer and PReLU, so that is the padded ``d``-channel map.

        Each call into torch counts: :func:`srbench.nn.infer.run_model` runs two strips of
        an image in two threads, every call lets the other thread take the interpreter lock,
        and this one may then wait for it. On the shared 2-core machine each such wait cost
        about 0.1 ms, against a pass of about 2.5 ms over a strip of a small Set5 image; so
        buffers and views are made once a pass, and a band costs about a dozen calls.
        """
        layers = list(self.body)  # (slicing the Sequential builds new ones: 80 us a pass)
        if pad:
            image = _pad(image[None, None], layers[0].kernel_size[0])[0, 0]
        x = self._head(image.contiguous(), *layers[:4])
        for conv, act in zip(layers[4:-2:2], layers[5:-2:2]):
            if pad:
                x = _pad(x, conv.kernel_size[0])
            x = act(conv(x))
        if pad:
            r = _DECONV_REACH
            x = F.pad(x, (r, r, r, r), mode="replicate")
            crop, cut = r, 0
        else:
            # Whole LR positions are left out of the tail, the rest of the crop cut after.
            crop, cut = divmod(self.hr_crop, self.scale)
        y = self._tail(x[0].permute(1, 2, 0).contiguous(), crop, *layers[-2:])
        return y[cut : y.shape[0] - cut, cut : y.shape[1] - cut] if cut else y

    def _head(self, image: torch.Tensor, conv1, act1, shrink, act2) -> torch.Tensor:
        """The first two layers and their PReLUs over an (H, W) image: a (1, s, H', W') map.

        Band by band (about :data:`_BAND_PIXELS` pixels), so a band's 25-row im2col and its
        ``d``-channel features stay in cache; the features are channel-major (``d`` rows of
        band pixels), the layout in which both GEMMs run fastest here, and the band's ``s``
        channels are transposed into the channels-last map the mapping layers take, whose
        PReLU runs once, over the whole map.
        """
        k = conv1.kernel_size[0]
        d, s = conv1.out_channels, shrink.out_channels
        w1, b1, w2, b2 = _derived(
            self,
            "head",
            (conv1.weight, conv1.bias, shrink.weight, shrink.bias),
            lambda: (conv1.weight.view(d, k * k), conv1.bias[:, None],
                     shrink.weight.view(s, d), shrink.bias[:, None]),
        )
        height, width = image.shape[0] - k + 1, image.shape[1] - k + 1
        rows = _band_rows(height, width, _BAND_PIXELS)
        cols = torch.empty(k * k, rows * width)
        out = torch.empty(height * width, s)
        # Row (dy, dx) of the im2col is the image shifted by (dy, dx).
        windows = image.as_strided((k, k, height, width), (image.stride(0), 1, image.stride(0), 1))
        for top in range(0, height, rows):
            n_rows = min(rows, height - top)
            n = n_rows * width
            # (Whole tensors, not slices, when the image is one band: fewer calls.)
            whole = n_rows == height
            band = cols if n == rows * width else cols[:, :n]
            band.view(k, k, n_rows, width).copy_(windows if whole else windows[:, :, top : top + n_rows])
            h = F.prelu(torch.addmm(b1, w1, band)[None], act1.weight)[0]
            band_out = out if whole else out[top * width : top * width + n]
            band_out.copy_(torch.addmm(b2, w2, h).t())
        return F.prelu(out.view(1, height, width, s).permute(0, 3, 1, 2), act2.weight)

    def _tail(self, x: torch.Tensor, crop: int, expand, act) -> torch.Tensor:
        """The expanding layer, its PReLU and the deconvolution of an (H, W, s) map.

        Computes the deconvolution's outputs at LR positions ``crop .. H - crop`` (and
        likewise across), ``scale`` times that in HR pixels; inputs beyond the map count as
        zero, as in the transposed convolution.

        Each band of input rows goes through the expanding layer and its PReLU, then one
        GEMM to the ``k*k`` tap images, written between ``D - 1`` zero rows above and below
        (``D = hi - lo + 1``, the rows one output reads). Each offset group of tap images is
        added, shifted, into the phase rows of every output row the band reaches, the zero
        rows standing in for the inputs of other bands: so every band adds the same views
        of the same buffers, made once and added with one call. The phase rows are a ring:
        after a band its first band-height rows are complete and are interleaved into the
        output with the bias, and the rest move to the ring's start. Every input row is
        computed once, with no halo.
        """
        deconv, s = self.deconv, self.scale
        filters, lo, hi, groups = _derived(
            deconv,
            "subpixel_taps",
            (deconv.weight,),
            lambda: subpixel_deconv_taps(deconv.weight, s, deconv.padding[0]),
        )
        height, width, channels = x.shape
        out_h, out_w = max(0, height - 2 * crop), max(0, width - 2 * crop)
        if out_h == 0 or out_w == 0:
            return torch.empty(out_h * s, out_w * s)
        reach = hi - lo
        bias = deconv.bias if deconv.bias is not None else torch.zeros(())
        out = torch.empty(out_h, s, out_w, s)
        # Output row y reads input rows crop + y + lo .. crop + y + hi (those in the map).
        first, last = max(0, crop + lo), min(height, crop + out_h + hi)
        rows = _band_rows(last - first, width, _BAND_PIXELS, least=reach)
        taps = torch.zeros(filters.shape[0], rows + 2 * reach, width)
        tap = taps.stride(0)
        band_taps = taps.view(-1, tap)[:, reach * width : (reach + rows) * width]
        # Ring row i holds output row top - crop - hi + i of the band from input row top;
        # at vertical offset lo + oy it reads band row i + oy - reach: tap row i + oy.
        # (Several views of the ring may be the same one: _foreach_add_ adds them in turn.)
        ring = torch.zeros(rows + reach, s, s, out_w)
        strides = ring.stride()
        dst, src = [], []
        for oy, noy, ox, nox, ry, nry, rx, nrx, row in groups:
            phases = nry * nrx
            # Output column x reads input column x + dx at the run's j-th offset across.
            dxs = [crop + lo + ox + j for j in range(nox)]
            spans = [(max(0, -dx), min(out_w, width - dx)) for dx in dxs]
            # One view for the run, split into its offsets' views by unbind (a call for all,
            # not one each), when they all reach the same output columns (all but the
            # single-offset runs at the edges of x4's valid pass).
            for j, m in [(0, nox)] if len(set(spans)) == 1 else [(j, 1) for j in range(nox)]:
                x0, x1 = spans[j]
                if x0 >= x1:
                    continue
                shape = (rows + reach, nry, nrx, x1 - x0)
                # Down the run, a tap image later and a row lower; across, one column on.
                steps = (nox * phases * tap + width, phases * tap + 1, width, nrx * tap, tap, 1)
                offset = (row + j * phases) * tap + oy * width + x0 + dxs[j]
                if noy * m == 1:
                    src.append(taps.as_strided(shape, steps[2:], offset))
                else:
                    for views in taps.as_strided((noy, m, *shape), steps, offset).unbind(0):
                        src.extend(views.unbind(0))
                phase_rows = ring.as_strided(shape, strides, ry * strides[1] + rx * out_w + x0)
                dst.extend([phase_rows] * (noy * m))
        done = ring.transpose(2, 3)
        pixels = x.view(height * width, channels)
        w3 = _derived(expand, "by_pixel", (expand.weight,), lambda: expand.weight.flatten(1).t())
        for top in range(first, last, rows):
            n = (min(top + rows, last) - top) * width
            final = top + rows >= last
            h = torch.addmm(expand.bias, pixels[top * width : top * width + n], w3)
            h = F.prelu(h, act.weight)  # (pixels, channels): PReLU's channels are dim 1
            if n == rows * width:
                torch.mm(filters, h.t(), out=band_taps)
            else:  # the last band: no inputs below
                torch.mm(filters, h.t(), out=band_taps[:, :n])
                band_taps[:, n:].zero_()
            torch._foreach_add_(dst, src)
            # Complete: the first `rows` ring rows (all of them after the last band).
            y = top - crop - hi
            y0, y1 = max(0, y), min(out_h, y + rows + (reach if final else 0))
            if y0 < y1:
                torch.add(done[y0 - y : y1 - y], bias, out=out[y0:y1])
            if not final:
                ring[:reach] = ring[rows:]
                ring[reach:].zero_()
        return out.view(out_h * s, out_w * s)

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


