"""The evaluation protocol: MATLAB-exact resizing, colour conversion and degradation.

Every number srbench prints is only as good as this module. The default protocol
(``matlab``) reproduces the pipeline of the SRCNN, ANR and A+ papers: luminance from
MATLAB's ``rgb2ycbcr``, ``modcrop``, a float bicubic ``imresize`` down by the scale, the
method, then metrics on uint8-rounded luminance with ``scale`` pixels shaved per border.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "cubic",
    "degrade",
    "imresize",
    "modcrop",
    "rgb2y",
    "rgb2ycbcr",
    "shave",
    "to_uint8",
    "ycbcr2rgb",
]

# MATLAB rgb2ycbcr: ITU-R BT.601, studio range, for RGB in [0, 1] giving YCbCr in [0, 255].
_YCBCR_MATRIX = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])
_RGB_MATRIX = np.linalg.inv(_YCBCR_MATRIX)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert a float image in [0, 1] to uint8 the way MATLAB's ``uint8(255*x)`` does.

    MATLAB saturates and rounds half away from zero; ``np.round`` would round half to even.
    Finite float32 and float64 images go through a compiled pass with the same arithmetic
    (:func:`srbench.colour_kernel.to_uint8`) where numba is installed.
    """
    image = np.asarray(image)
    if image.dtype in (np.float32, np.float64) and image.size:
        from srbench import colour_kernel

        if colour_kernel.available() and np.isfinite(image.min()) and np.isfinite(image.max()):
            return colour_kernel.to_uint8(image)
    scaled = np.clip(np.asarray(image, dtype=np.float64) * 255.0, 0.0, 255.0)
    return np.floor(scaled + 0.5).astype(np.uint8)


def rgb2ycbcr(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` (BT.601 studio range).

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        uint8 in [0, 255] or float in [0, 1].

    Returns
    -------
    ndarray, shape (H, W, 3)
        uint8 input gives uint8 output rounded half away from zero (Y in [16, 235]);
        float input gives float output in [0, 1] units, unrounded.
    """
    rgb = _checked_rgb(rgb, "rgb2ycbcr")
    ycc = _ycbcr_product(rgb)
    ycc += _YCBCR_OFFSET
    return _ycbcr_values(ycc, rgb.dtype)


def rgb2y(rgb: np.ndarray) -> np.ndarray:
    """The Y channel of :func:`rgb2ycbcr` alone: the same values, (H, W), a third of the
    rounding work."""
    rgb = _checked_rgb(rgb, "rgb2y")
    return _ycbcr_values(_ycbcr_product(rgb)[..., 0] + _YCBCR_OFFSET[0], rgb.dtype)


def _checked_rgb(rgb: np.ndarray, name: str) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"{name} expects an (H, W, 3) image, got shape {rgb.shape}")
    return rgb


def _ycbcr_product(rgb: np.ndarray) -> np.ndarray:
    """The BT.601 matrix applied to every pixel of ``rgb`` in [0, 1] units (float64), offset
    not added.

    One BLAS product of all the pixels as rows: the per-row stack numpy makes of an
    (H, W, 3) operand took four times as long, for the same sums (a pixel's three products
    in the same order; identical on all 2^24 uint8 colours).
    """
    unit = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    return (unit.reshape(-1, 3) @ _YCBCR_MATRIX.T).reshape(rgb.shape)


def _ycbcr_values(ycc: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """YCbCr in [0, 255] units as :func:`rgb2ycbcr` returns it for input of ``dtype``."""
    if dtype == np.uint8:
        return np.floor(np.clip(ycc, 0, 255) + 0.5).astype(np.uint8)
    return (ycc / 255.0).astype(dtype if dtype.kind == "f" else np.float64)


def ycbcr2rgb(ycc: np.ndarray) -> np.ndarray:
    """MATLAB ``ycbcr2rgb``, the inverse of :func:`rgb2ycbcr` (same dtype conventions)."""
    ycc = np.asarray(ycc)
    if ycc.ndim != 3 or ycc.shape[2] != 3:
        raise ValueError(f"ycbcr2rgb expects an (H, W, 3) image, got shape {ycc.shape}")
    is_uint8 = ycc.dtype == np.uint8
    values = ycc.astype(np.float64) * (1.0 if is_uint8 else 255.0)
    rgb = (values - _YCBCR_OFFSET) @ _RGB_MATRIX.T
    if is_uint8:
        return to_uint8(rgb)
    return rgb.astype(ycc.dtype if ycc.dtype.kind == "f" else np.float64)


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's bicubic)."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


class ResizeWeights:
    """One axis of MATLAB ``imresize`` as a CSR matrix (``out_len`` x ``in_len``), read-only.

    ``data``, ``indices`` and ``indptr`` are the arrays scipy's ``csr_matrix`` would hold
    (float64 weights, int32 indices, columns sorted within a row, no explicit zeros), which
    the compiled kernels take as they are. Built with numpy alone: importing
    ``scipy.sparse`` took 0.17 s of every process that resizes, longer than the resize.
    """

    __slots__ = ("data", "indices", "indptr", "shape", "_scipy")

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> None:
        for array in (data, indices, indptr):
            array.setflags(write=False)
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = shape
        self._scipy = None

    def toarray(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        dense[rows, self.indices] = self.data
        return dense

    def tocsr(self):
        """The same matrix as a ``scipy.sparse.csr_matrix`` (for the scipy path)."""
        if self._scipy is None:
            from scipy import sparse

            self._scipy = sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)
        return self._scipy


@lru_cache(maxsize=256)
def _resize_weights(in_len: int, out_len: int, scale: float, antialias: bool) -> ResizeWeights:
    """MATLAB ``imresize`` contributions along one axis, as a sparse (out_len, in_len) matrix.

    Each output sample has ``ceil(kernel width) + 2`` taps (4-6 when enlarging), so the
    matrix is stored in CSR form: a resize then costs taps x output samples instead of a
    dense matrix's in_len x output samples (200x less at x4 on a 1000-pixel axis). Cached
    (with its arrays read-only) because grids resize many images of the same few sizes.
    """
    shrinking = scale < 1 and antialias
    kernel_width = 4.0 / scale if shrinking else 4.0
    x = np.arange(1, out_len + 1, dtype=np.float64)
    # Output pixel x (1-based) maps to input coordinate u, pixel centres aligned.
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = math.ceil(kernel_width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if shrinking else cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding: mirror indices outside 1..in_len back inside, edge repeated.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    # Taps mirrored onto the same column are summed, as MATLAB's accumulation does: sort
    # each row's taps by column (stably), add up each run of equal columns, then drop the
    # zeros (taps exactly 2 away have weight 0).
    order = np.argsort(columns, axis=1, kind="stable")
    columns = np.take_along_axis(columns, order, axis=1).ravel()
    weights = np.take_along_axis(weights, order, axis=1).ravel()
    rows = np.repeat(np.arange(out_len), taps)
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (columns[1:] != columns[:-1])
    starts = np.flatnonzero(first)
    summed = np.add.reduceat(weights, starts)
    kept = summed != 0
    counts = np.bincount(rows[starts][kept], minlength=out_len)
    indptr = np.zeros(out_len + 1, dtype=np.int32)
    np.cumsum(counts, out=indptr[1:])
    return ResizeWeights(
        summed[kept], columns[starts][kept].astype(np.int32), indptr, (out_len, in_len)
    )


def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """The dense (out_len, in_len) form of :func:`_resize_weights` (for inspection and tests)."""
    return _resize_weights(in_len, out_len, scale, antialias).toarray()


def _apply_first_axis(matrix: ResizeWeights, data: np.ndarray) -> np.ndarray:
    """``matrix`` (m x n) applied along axis 0 of C-contiguous ``data`` (n, ...)."""
    flat = data.reshape(data.shape[0], -1)
    return np.asarray(matrix.tocsr() @ flat).reshape((matrix.shape[0],) + data.shape[1:])


def imresize(
    image: np.ndarray,
    scale: float | None = None,
    *,
    output_shape: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """MATLAB ``imresize(image, scale, 'bicubic')``.

    Each axis is a sparse weight matrix (:func:`_resize_weights`) applied along it, in float64.
    uint8, float32 and float64 images go through the compiled, multi-threaded kernels of
    :mod:`srbench.resize_kernel` where numba is installed; other dtypes, and every image
    without numba, through scipy's sparse products. Both give the same numbers bit for bit.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        Float images are resized in float64 and returned in their own float dtype, unrounded;
        uint8 images are returned rounded to uint8 like MATLAB. A 3-D image is resized as
        its channels would be one by one (every channel in the same two passes).
    scale : float, optional
        Positive scale factor; output size is ``ceil(size * scale)``.
    output_shape : (int, int), optional
        Explicit output (H, W); the per-axis scale is then ``out / in``.
    antialias : bool
        Widen the kernel when shrinking (MATLAB's default).
    """
    return _imresize(image, scale, output_shape, antialias, None)


def _imresize(
    image: np.ndarray,
    scale: float | None,
    output_shape: tuple[int, int] | None,
    antialias: bool,
    compiled: bool | None,
) -> np.ndarray:
    """:func:`imresize` through the compiled kernels (``compiled`` True: needs numba and a
    uint8, float32 or float64 image), through scipy's products (False), or through the
    kernels wherever they apply (None)."""
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize expects a 2-D or 3-D image, got shape {image.shape}")
    in_h, in_w = image.shape[:2]
    if output_shape is not None:
        out_h, out_w = (int(v) for v in output_shape)
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"output_shape must be positive, got {output_shape}")
        scale_h, scale_w = out_h / in_h, out_w / in_w
    elif scale is not None:
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scale_h = scale_w = float(scale)
        out_h, out_w = math.ceil(in_h * scale), math.ceil(in_w * scale)
    else:
        raise ValueError("imresize needs a scale or an output_shape")

    rows = _resize_weights(in_h, out_h, scale_h, antialias)
    cols = _resize_weights(in_w, out_w, scale_w, antialias)
    # MATLAB resizes the axis with the smaller scale first; the order only changes round-off,
    # so take the one that moves less data: width first when enlarging (the passes then read
    # the small input and the intermediate), height first when shrinking.
    height_first = in_h * in_w + in_h * out_w > out_h * in_w + out_h * out_w
    if compiled is not False:
        from srbench import resize_kernel

        if compiled is None:
            compiled = image.dtype in resize_kernel.DTYPES and resize_kernel.available()
        if compiled:
            return resize_kernel.resize(image, rows, cols, height_first)
    return _resize_scipy(image, rows, cols, height_first)


def _resize_scipy(image: np.ndarray, rows, cols, height_first: bool) -> np.ndarray:
    """:func:`imresize` with scipy's sparse products, the reference and the fallback without
    numba (and the path for dtypes other than uint8, float32 and float64)."""
    data = image.astype(np.float64)
    if image.dtype == np.uint8:
        data /= 255.0
    # Each pass is a sparse product along the leading axis, so the other axis is brought to
    # the front once (a transposing copy).
    if not height_first:
        out = _apply_first_axis(cols, np.ascontiguousarray(np.swapaxes(data, 0, 1)))
        out = _apply_first_axis(rows, np.ascontiguousarray(np.swapaxes(out, 0, 1)))
    else:
        out = _apply_first_axis(rows, data)
        out = _apply_first_axis(cols, np.ascontiguousarray(np.swapaxes(out, 0, 1)))
        out = np.swapaxes(out, 0, 1)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(to_uint8(out))
    if image.dtype.kind == "f":
        return out.astype(image.dtype, order="C", copy=False)
    return np.ascontiguousarray(out)


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom and right so height and width are multiples of ``scale``."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale, ...]


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from every side."""
    if border <= 0:
        return image
    return image[border:-border, border:-border, ...]


def degrade(hr: np.ndarray, scale: int) -> np.ndarray:
    """Make the LR input for an HR luminance image (default ``matlab`` protocol).

    ``hr`` must already be modcropped uint8 (or [0, 1] float) luminance. Returns the
    float32 LR image in [0, 1] made by MATLAB ``imresize(hr/255, 1/scale, 'bicubic')``,
    not rounded to uint8.
    """
    if hr.ndim != 2:
        raise ValueError(f"degrade expects a 2-D luminance image, got shape {hr.shape}")
    if hr.shape[0] % scale or hr.shape[1] % scale:
        raise ValueError(f"image of shape {hr.shape} is not modcropped to scale {scale}")
    unit = hr.astype(np.float32) / 255.0 if hr.dtype == np.uint8 else hr.astype(np.float32)
    return imresize(unit, 1.0 / scale)
