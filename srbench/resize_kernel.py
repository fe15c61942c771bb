"""MATLAB ``imresize`` compiled: the cached CSR weights applied along both axes, in bands.

:func:`srbench.protocol.imresize` applies one sparse (CSR) weight matrix per axis. With scipy
that is two single-threaded ``csr_matvecs`` products along the leading axis, transposing
copies to bring each axis to the front, a float64 intermediate image and a final dtype
conversion. These kernels apply the same CSR arrays (``data``, ``indices``, ``indptr`` of the
cached matrices) along axis 0 and axis 1 of the (H, W, C) image as it lies, one output row
at a time: no transposes, no intermediate image (the intermediate rows an output row needs
live in a small per-band buffer), float32 read as it is and the caller's dtype (float32,
float64, or uint8 rounded as :func:`srbench.protocol.to_uint8`) written directly. Large
outputs are split into bands of rows over numba's threads (:data:`PARALLEL_FROM`).

Every output element is the same sum as scipy's: starting from 0.0, ``data[jj] * x[j]``
added for each stored entry of its CSR row in storage order, in float64, without fastmath
(so no reassociation and no fused multiply-adds). Both passes run in the order
:func:`srbench.protocol.imresize` chooses, so the results are bit for bit those of the
scipy path (tested with ``np.array_equal``), which stays the fallback without numba and
for dtypes other than uint8, float32 and float64.
"""

from __future__ import annotations

import numpy as np

from srbench import memory
from srbench.jit import available, jit, limit_threads, prange
from srbench.jit import preload as preload_kernel

__all__ = ["DTYPES", "available", "resize", "warm_up"]

# Input dtypes the kernels take (uint8 is converted to float64 / 255 first, as scipy's path).
DTYPES = (np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.float64))

# Smaller outputs are made in the calling thread alone. Such a call takes at most a few
# milliseconds; on a machine whose other cores are busy (a benchmark's worker), waking a
# second thread for it was measured to cost more than that (7 ms for a 0.3 ms resize), and
# its threads spinning after the call would compete with the next timed call (as the SSIM
# kernel found). The harness's LR images and SRCNN's inputs are below this size.
PARALLEL_FROM = 1 << 21


def resize(image: np.ndarray, rows, cols, height_first: bool, *, bands: int | None = None) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) resized by the CSR matrices ``rows`` (out_h x H) and
    ``cols`` (out_w x W), height pass first or width pass first; dtype as ``imresize``.

    ``image.dtype`` must be one of :data:`DTYPES`; the result is C-contiguous. The output
    rows are split into ``bands``, by default one per numba thread from
    :data:`PARALLEL_FROM` output values on and a single one below; the numbers do not depend
    on it.
    """
    image = np.asarray(image)
    dtype = image.dtype
    x = image if image.ndim == 3 else image[:, :, None]
    if dtype == np.uint8:
        x = x.astype(np.float64)
        x /= 255.0
    elif not (x.flags.c_contiguous and x.flags.writeable):
        # One array type per dtype (a read-only array would be another specialisation).
        x = np.array(x, order="C")
    out_h, out_w = rows.shape[0], cols.shape[0]
    out = memory.empty((out_h, out_w, x.shape[2]), dtype=dtype)
    quantize = dtype == np.uint8
    csr = (rows.data, rows.indices, rows.indptr, cols.data, cols.indices, cols.indptr)
    if bands is None and out.size < PARALLEL_FROM:
        # The serial kernel: it never starts numba's thread pool (see :func:`preload`).
        serial = _height_then_width_rows if height_first else _width_then_height_rows
        serial(*csr, x, out, quantize, 0, out_h)
    else:
        import numba

        limit_threads()
        kernel = _height_then_width if height_first else _width_then_height
        bands = max(1, min(out_h, numba.get_num_threads() if bands is None else bands))
        kernel(*csr, x, out, quantize, bands)
    return out if image.ndim == 3 else out.reshape(out_h, out_w)


def _examples():
    """Arguments of every specialisation :func:`resize` uses: both pass orders from float32
    into float32, float64 into float64 and float64 into uint8."""
    from srbench.protocol import _resize_weights

    rows = _resize_weights(6, 3, 0.5, True)
    cols = _resize_weights(5, 10, 2.0, True)
    csr = (rows.data, rows.indices, rows.indptr, cols.data, cols.indices, cols.indptr)
    for dtype in DTYPES:
        x = np.zeros((6, 5, 2), dtype=np.float64 if dtype == np.uint8 else dtype)
        yield csr, x, np.zeros((3, 10, 2), dtype=dtype), dtype == np.uint8


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel :func:`resize` uses, serial and
    parallel."""
    if not available():
        return
    for csr, x, out, quantize in _examples():
        for serial, parallel in ((_height_then_width_rows, _height_then_width),
                                 (_width_then_height_rows, _width_then_height)):
            serial(*csr, x, out, quantize, 0, 0)
            parallel(*csr, x, out, quantize, 1)


def preload() -> None:
    """Load the serial kernels without running them (see :func:`srbench.jit.preload`).

    For the pool's zygote: loading them there saves every forked worker about 0.45 s of
    numba's code generator starting up inside its first timed call. Only the serial ones:
    loading a parallel kernel starts GNU OpenMP, after which a forked child may not run one.
    """
    if not available():
        return
    for csr, x, out, quantize in _examples():
        for serial in (_height_then_width_rows, _width_then_height_rows):
            preload_kernel(serial, *csr, x, out, quantize, 0, 0)


# ------------------------------------------------------------------ the height pass, one row
# A row's taps are added four at a time in one sweep along the row, each sum kept in a
# register: ``(((acc + w0 r0) + w1 r1) + w2 r2) + w3 r3``, ``acc`` a row of zeros for the
# first four, so each sum is still 0.0 + its taps in CSR order. Where fewer than four taps
# are left, the rest are weight 0.0 times a row of zeros: they add +0.0, which changes no sum
# (a sum that starts at +0.0 is never -0.0, and inf and nan stay what they are).


@jit()
def _four(acc, dst, quantize, n, w0, r0, w1, r1, w2, r2, w3, r3):
    """``dst[:n] = acc + the four taps``, cast to ``dst``'s dtype or rounded to uint8."""
    if quantize:
        for k in range(n):
            dst[k] = _to_uint8((((acc[k] + w0 * r0[k]) + w1 * r1[k]) + w2 * r2[k]) + w3 * r3[k])
    else:
        for k in range(n):
            dst[k] = (((acc[k] + w0 * r0[k]) + w1 * r1[k]) + w2 * r2[k]) + w3 * r3[k]


@jit()
def _to_uint8(value):
    """:func:`srbench.protocol.to_uint8` of one float64: saturate, round half away from 0."""
    scaled = min(max(value * 255.0, 0.0), 255.0)
    return np.uint8(np.floor(scaled + 0.5))


# -------------------------------------------------------------------- the width pass, one row
# Along a row each output sample has its own taps. The matrix is laid out per output sample
# of a flattened (W*C) row (ELLPACK: weights and source positions, padded to the most taps of
# any CSR row with weight 0.0 at position n, a 0.0 kept just past the row's end), so each
# sum is built in a register, 0.0 + its taps in CSR order (+ the padding's +0.0).


@jit()
def _per_sample(data, indices, indptr, channels, width):
    """The width matrix per output sample of a flattened (W*C) row: weights and source
    positions (out_w*C, taps), padded with weight 0.0 at position ``width * channels``."""
    n_out = indptr.size - 1
    taps = 1
    for j in range(n_out):
        taps = max(taps, indptr[j + 1] - indptr[j])
    m = n_out * channels
    weight = np.zeros((m, taps))
    source = np.full((m, taps), width * channels, np.uint32)
    for j in range(n_out):
        start = indptr[j]
        for c in range(channels):
            k = j * channels + c
            for t in range(indptr[j + 1] - start):
                weight[k, t] = data[start + t]
                source[k, t] = indices[start + t] * channels + c
    return weight, source


@jit()
def _width_row(weight, source, src, row, quantize):
    """``row`` = the width pass of one flattened float64 row ``src`` (its last element the
    padding's 0.0), cast to ``row``'s dtype or rounded to uint8."""
    m, taps = weight.shape
    for k in range(m):
        w = weight[k]
        s = source[k]
        total = 0.0
        for t in range(taps):
            total += w[t] * src[s[t]]
        if quantize:
            row[k] = _to_uint8(total)
        else:
            row[k] = total


# ------------------------------------------------------------------- the two pass orders


@jit()
def _height_then_width_rows(rdata, rindices, rindptr, cdata, cindices, cindptr, x, out, quantize, first, last):
    """Shrinking, output rows ``first .. last - 1``: the height pass of each output row, then
    its width pass; no intermediate image."""
    h, w, channels = x.shape
    n = w * channels
    weight, source = _per_sample(cdata, cindices, cindptr, channels, w)
    flat = x.reshape(h, n)
    target = out.reshape(out.shape[0], out.shape[1] * channels)
    zero = np.zeros(n)
    none = np.zeros(n, flat.dtype)
    mid = np.zeros(n + 1)  # mid[n] stays 0.0: the width pass's padding
    for i in range(first, last):
        stop = rindptr[i + 1]
        jj = rindptr[i]
        acc = zero
        while True:
            w0, r0 = (rdata[jj], flat[rindices[jj]]) if jj < stop else (0.0, none)
            w1, r1 = (rdata[jj + 1], flat[rindices[jj + 1]]) if jj + 1 < stop else (0.0, none)
            w2, r2 = (rdata[jj + 2], flat[rindices[jj + 2]]) if jj + 2 < stop else (0.0, none)
            w3, r3 = (rdata[jj + 3], flat[rindices[jj + 3]]) if jj + 3 < stop else (0.0, none)
            _four(acc, mid, False, n, w0, r0, w1, r1, w2, r2, w3, r3)
            acc = mid
            jj += 4
            if jj >= stop:
                break
        _width_row(weight, source, mid, target[i], quantize)


@jit(parallel=True)
def _height_then_width(rdata, rindices, rindptr, cdata, cindices, cindptr, x, out, quantize, bands):
    """:func:`_height_then_width_rows` over bands of output rows, in parallel."""
    out_h = out.shape[0]
    for b in prange(bands):
        _height_then_width_rows(rdata, rindices, rindptr, cdata, cindices, cindptr, x, out, quantize,
                                b * out_h // bands, (b + 1) * out_h // bands)


@jit()
def _width_then_height_rows(rdata, rindices, rindptr, cdata, cindices, cindptr, x, out, quantize, first, last):
    """Enlarging, output rows ``first .. last - 1``: the width pass of an input row is
    computed when an output row first needs it and kept in a small cache (a slot per input
    row modulo the widest span of one output row's taps, so a row's taps never evict each
    other); each output row is then the height pass of cached rows. No intermediate image."""
    h, w, channels = x.shape
    n = w * channels
    weight, source = _per_sample(cdata, cindices, cindptr, channels, w)
    flat = x.reshape(h, n)
    target = out.reshape(out.shape[0], out.shape[1] * channels)
    m = target.shape[1]
    span = 1
    for i in range(first, last):
        low = h
        high = 0
        for jj in range(rindptr[i], rindptr[i + 1]):
            low = min(low, rindices[jj])
            high = max(high, rindices[jj])
        span = max(span, high - low + 1)
    zero = np.zeros(m)
    cache = np.empty((span, m))
    held = np.full(span, -1, np.int64)
    line = np.zeros(n + 1)  # line[n] stays 0.0: the width pass's padding
    partial = np.empty(m)
    for i in range(first, last):
        stop = rindptr[i + 1]
        for jj in range(rindptr[i], stop):
            row = rindices[jj]
            if held[row % span] != row:
                src = flat[row]
                for k in range(n):
                    line[k] = src[k]
                _width_row(weight, source, line, cache[row % span], False)
                held[row % span] = row
        jj = rindptr[i]
        acc = zero
        while True:
            w0, r0 = (rdata[jj], cache[rindices[jj] % span]) if jj < stop else (0.0, zero)
            w1, r1 = (rdata[jj + 1], cache[rindices[jj + 1] % span]) if jj + 1 < stop else (0.0, zero)
            w2, r2 = (rdata[jj + 2], cache[rindices[jj + 2] % span]) if jj + 2 < stop else (0.0, zero)
            w3, r3 = (rdata[jj + 3], cache[rindices[jj + 3] % span]) if jj + 3 < stop else (0.0, zero)
            jj += 4
            if jj >= stop:
                _four(acc, target[i], quantize, m, w0, r0, w1, r1, w2, r2, w3, r3)
                break
            _four(acc, partial, False, m, w0, r0, w1, r1, w2, r2, w3, r3)
            acc = partial


@jit(parallel=True)
def _width_then_height(rdata, rindices, rindptr, cdata, cindices, cindptr, x, out, quantize, bands):
    """:func:`_width_then_height_rows` over bands of output rows, in parallel (a band
    recomputes the few input rows it shares with the previous one)."""
    out_h = out.shape[0]
    for b in prange(bands):
        _width_then_height_rows(rdata, rindices, rindptr, cdata, cindices, cindptr, x, out, quantize,
                                b * out_h // bands, (b + 1) * out_h // bands)