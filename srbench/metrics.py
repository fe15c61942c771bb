"""PSNR and SSIM exactly as the SR literature computes them.

Both compare uint8-rounded luminance after shaving ``scale`` pixels from every border
(DESIGN.md section 1, step 5).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np

from srbench.protocol import shave, to_uint8

__all__ = ["evaluate", "psnr", "psnr_255", "ssim", "ssim_255"]


def _as_uint8(image: np.ndarray) -> np.ndarray:
    return image if image.dtype == np.uint8 else to_uint8(image)


def _check_pair(sr: np.ndarray, hr: np.ndarray) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"shape mismatch: output {sr.shape} vs reference {hr.shape}")


def psnr(sr: np.ndarray, hr: np.ndarray, *, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB on uint8 images (peak 255).

    Float inputs are taken to be in [0, 1] and rounded like MATLAB's ``uint8(255*x)``.
    """
    _check_pair(sr, hr)
    return psnr_255(shave(_as_uint8(sr), border), shave(_as_uint8(hr), border))


def psnr_255(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (peak 255) of two images already on the 0-255 scale, taken as they are.

    The RGB protocol scores unrounded luminance (``rgb2ycbcr(im2double(.)) * 255``), so
    nothing is rounded or shaved here.
    """
    _check_pair(a, b)
    from srbench import ssim_kernel

    if a.dtype == b.dtype == np.uint8 and a.size and ssim_kernel.available():
        # In exact integers, in one pass: the same mean (see sum_squared_differences).
        mse = ssim_kernel.sum_squared_differences(a, b) / a.size
    else:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    # fspecial('gaussian') is separable: its 2-D normalisation equals the 1-D one squared.
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """MATLAB ``filter2(w*w', image, 'valid')`` for a separable symmetric window."""
    # Imported here: scipy.ndimage takes 0.2 s to import, and only this fallback uses it.
    from scipy.ndimage import correlate1d

    radius = len(window) // 2
    out = correlate1d(image, window, axis=0, mode="constant")
    out = correlate1d(out, window, axis=1, mode="constant")
    return out[radius:-radius, radius:-radius]


def _ssim_map(
    a: np.ndarray,
    b: np.ndarray,
    window: np.ndarray,
    c1: float,
    c2: float,
    *,
    compiled: bool | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """The SSIM map ('valid'), from the compiled kernel or from scipy and numpy.

    The kernel (:mod:`srbench.ssim_kernel`) gives the same numbers several times faster;
    scipy's ``correlate1d`` is the fallback without numba. ``reference``: ``b``'s local
    statistics for the kernel (:func:`srbench.ssim_kernel.reference_statistics`).
    """
    from srbench import ssim_kernel

    if compiled is None:
        compiled = ssim_kernel.available()
    if compiled:
        return ssim_kernel.ssim_map(a, b, window, c1, c2, reference=reference)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu_a, mu_b, sq_a, sq_b, prod = (_filter_valid(m, window) for m in (a, b, a * a, b * b, a * b))
    mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = sq_a - mu_a2
    var_b = sq_b - mu_b2
    cov = prod - mu_ab
    return ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))


def ssim(sr: np.ndarray, hr: np.ndarray, *, border: int = 0) -> float:
    """Mean SSIM as Wang et al.'s MATLAB ``ssim_index`` (11x11 Gaussian, sigma 1.5).

    K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, no downsampling.
    """
    _check_pair(sr, hr)
    hr8 = _as_uint8(hr)
    b = shave(hr8, border)
    return _mean_ssim(shave(_as_uint8(sr), border), b, _reference(hr8, border, b) if hr8 is hr else None)


#: The local statistics of the last few ground truths SSIM was taken against (see
#: :func:`_reference`), by (array identity, border): each with a weak reference to its array.
_REFERENCES: OrderedDict[tuple[int, int], tuple[weakref.ref, np.ndarray]] = OrderedDict()
_REFERENCES_KEPT = 2


def _frozen(array: np.ndarray) -> bool:
    """Whether nothing can change the array's values: it and every array it views are read-only."""
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return False
        array = array.base
    return array is None or isinstance(array, bytes)


def _reference(hr: np.ndarray, border: int, shaved: np.ndarray) -> np.ndarray | None:
    """The SSIM kernel's statistics of ``shaved`` (``hr`` shaved by ``border``), kept for ``hr``.

    A benchmark takes SSIM of every method's output against the same ground truth; the
    ground truth's local mean and mean square are then computed once, not once per method,
    and every map comes out the same to the bit (a third less work for each). Kept only for
    an array nothing can change (:func:`_frozen`; the runner's ground truths are read-only),
    recognised as the same object, which a weak reference tells from a new array at a
    reused address. None: compute the map whole.
    """
    from srbench import ssim_kernel

    if not (ssim_kernel.available() and _frozen(hr) and min(shaved.shape) >= 11):
        return None
    key = (id(hr), border)
    kept = _REFERENCES.get(key)
    if kept is not None and kept[0]() is hr:
        _REFERENCES.move_to_end(key)
        return kept[1]
    statistics = ssim_kernel.reference_statistics(shaved, _gaussian_window())
    _REFERENCES[key] = (weakref.ref(hr), statistics)
    while len(_REFERENCES) > _REFERENCES_KEPT:
        _REFERENCES.popitem(last=False)
    return statistics


def ssim_255(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s mean SSIM (L = 255) of two images on the 0-255 scale, taken as they are."""
    return _mean_ssim(a, b, None)


def _mean_ssim(a: np.ndarray, b: np.ndarray, reference: np.ndarray | None) -> float:
    _check_pair(a, b)
    if not (a.dtype == b.dtype == np.uint8):  # uint8 pairs go to the map as they are
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after shaving, got {a.shape}")
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    return float(_ssim_map(a, b, _gaussian_window(), c1, c2, reference=reference).mean())


def evaluate(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """PSNR and SSIM of an SR result against HR luminance, shaving ``scale`` pixels."""
    sr8 = _as_uint8(sr)
    hr8 = _as_uint8(hr)
    return psnr(sr8, hr8, border=scale), ssim(sr8, hr8, border=scale)
