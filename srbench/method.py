"""The Method base class every super-resolution method derives from.

A method follows scikit-learn's estimator contract: ``__init__`` only stores keyword
hyperparameters, :meth:`Method.fit` learns trailing-underscore artifacts and returns
``self``, and :meth:`Method.save` / :meth:`Method.load` persist those artifacts as
safetensors plus a JSON manifest (never pickle).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "ArtifactError",
    "Method",
    "MethodError",
    "NotFittedError",
    "UnsupportedScaleError",
]


class MethodError(Exception):
    """Base class for errors raised by methods and the machinery around them."""


class UnsupportedScaleError(MethodError, ValueError):
    """The method has no model for the requested scale."""


class NotFittedError(MethodError, RuntimeError):
    """A trainable method was asked to upscale before artifacts were fitted or loaded."""


class ArtifactError(MethodError):
    """Saved artifacts are missing, unreadable or do not match the method."""


MANIFEST_SUFFIX = ".json"
#: How far outside [0, 1] a raw output may stray before it counts as a wrong range.
OUT_OF_RANGE_SLACK = 1.0
ARTIFACT_SUFFIX = ".safetensors"


class Method:
    """Base class of a super-resolution method.

    Subclasses set the class metadata below, define ``__init__`` with keyword-only
    hyperparameters that are stored unchanged under the same names, and implement
    :meth:`_upscale`. Trainable methods also implement :meth:`_fit_scale`,
    :meth:`_artifacts` and :meth:`_restore`.

    Attributes
    ----------
    name : str
        Short lowercase registry name ("anr").
    label : str
        Display label ("ANR").
    scales : frozenset of int
        Scales the method supports.
    trainable : bool
        Whether the method learns artifacts with :meth:`fit`.
    version : str
        Bump when outputs change: it is part of every cached result's key.
    citation : str
        Reference to the paper.
    devices : tuple of str
        Devices the method can run on ("cpu", "cuda").
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    scales: ClassVar[frozenset[int]] = frozenset({2, 3, 4})
    trainable: ClassVar[bool] = False
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = ""
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    #: What ``upscale`` maps: "y", luminance (H, W); or "rgb", colour (H, W, 3).
    channels: ClassVar[str] = "y"
    #: The scale trained from scratch when the others start from it (CNNs fine-tune x2/x4
    #: from x3); ``srbench train`` fits it first. None: scales are independent.
    base_scale: ClassVar[int | None] = None
    #: Optional hook a front end sets before ``fit`` (not a hyperparameter): long training
    #: loops call ``progress_callback(done, total, info)`` to drive a progress bar.
    progress_callback: Callable[[int, int, str], None] | None = None
    #: Parameters that do not change outputs (device, resume, progress, checkpoint paths):
    #: left out of the result key.
    runtime_params: ClassVar[frozenset[str]] = frozenset()
    #: Parameters a trainable method uses only at inference, so ``srbench run --set`` may
    #: change them without retraining (a CNN's border handling, ANR's neighbourhood).
    inference_params: ClassVar[frozenset[str]] = frozenset()

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to ``__init__`` (part of the result key)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def key_params(self) -> dict[str, Any]:
        """Hyperparameters that change outputs; part of every cached result's key."""
        return {k: v for k, v in self.get_params().items() if k not in self.runtime_params}

    def set_params(self, **params: Any) -> Method:
        known = set(self._param_names())
        for key, value in params.items():
            if key not in known:
                raise MethodError(f"{self.name}: unknown parameter {key!r}; known: {sorted(known)}")
            setattr(self, key, value)
        return self

    def parse_settings(self, settings: Sequence[str]) -> dict[str, Any]:
        """Parameters from ``KEY=VALUE`` strings, each converted to its current value's type.

        For command lines (``srbench train ksvd --set n_atoms=512``). Booleans accept
        true/false/1/0/yes/no; ``none`` gives None.
        """
        known = self.get_params()
        parsed: dict[str, Any] = {}
        for item in settings:
            key, sep, text = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                raise MethodError(f"{self.name}: expected KEY=VALUE, got {item!r}")
            if key not in known:
                raise MethodError(
                    f"{self.name}: unknown parameter {key!r}; known: {sorted(known)}"
                )
            parsed[key] = convert_setting(key, text.strip(), known[key])
        return parsed

    def configure_training(self, *, settings: Sequence[str] = (), **options: Any) -> Method:
        """Set how the next :meth:`fit` trains, and return self.

        ``settings`` are ``KEY=VALUE`` texts (``srbench train --set``) and ``options`` are
        values by keyword (``srbench train --epochs``). Here both set ``__init__``
        hyperparameters, which then belong to the result key. A method whose training is
        described by a recipe instead (the CNNs) overrides this, so that training settings
        and run controls (resume, warm start, time budget) stay out of the key.
        """
        params = self.parse_settings(settings)
        known = set(self._param_names())
        for key, value in options.items():
            if key not in known:
                raise MethodError(f"{self.name} has no --{key.replace('_', '-')} option")
            params[key] = value
        return self.set_params(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ scales
    def check_scale(self, scale: int) -> int:
        if isinstance(scale, bool) or int(scale) != scale or int(scale) not in self.scales:
            supported = ", ".join(str(s) for s in sorted(self.scales))
            raise UnsupportedScaleError(
                f"{self.name} does not support scale {scale!r} (supported: {supported})"
            )
        return int(scale)

    @property
    def fitted_scales(self) -> frozenset[int]:
        """Scales for which artifacts are present (all supported scales if not trainable)."""
        if not self.trainable:
            return frozenset(self.scales)
        return frozenset(getattr(self, "artifacts_", {}).keys())

    # ------------------------------------------------------------------ inference
    def upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        """Map an LR image in [0, 1] to the HR estimate.

        Parameters
        ----------
        lr : ndarray, shape (h, w) or (h, w, 3), float
            Low-resolution luminance, or RGB for a method whose ``channels`` is "rgb";
            never modified.
        scale : int
            Integer scale factor; must be in :attr:`scales`.

        Returns
        -------
        ndarray, shape (h * scale, w * scale[, 3]), float32, in [0, 1].
        """
        scale = self.check_scale(scale)
        lr = np.asarray(lr)
        if self.channels == "rgb":
            if lr.ndim != 3 or lr.shape[2] != 3:
                raise MethodError(f"{self.name}: expected an (h, w, 3) RGB image, got shape {lr.shape}")
        elif lr.ndim != 2:
            raise MethodError(f"{self.name}: expected a 2-D luminance image, got shape {lr.shape}")
        if self.trainable and scale not in self.fitted_scales:
            raise NotFittedError(
                f"{self.name} has no artifacts for x{scale}: run `srbench train {self.name} "
                f"-s {scale}` or load them from {self.weights_dir()}"
            )
        view = lr.astype(np.float32, copy=False)
        view = view.view()
        view.flags.writeable = False
        out = np.asarray(self._upscale(view, scale), dtype=np.float32)
        expected = (lr.shape[0] * scale, lr.shape[1] * scale, *lr.shape[2:])
        if out.shape != expected:
            raise MethodError(f"{self.name}: output shape {out.shape}, expected {expected}")
        if not np.all(np.isfinite(out)):
            raise MethodError(f"{self.name}: output holds NaN or infinite values")
        # Overshoot near edges is normal (bicubic rings) and uint8 conversion saturates it
        # anyway; values far outside [0, 1] mean a wrong intensity range, which is an error.
        low, high = float(out.min()), float(out.max())
        if low < -OUT_OF_RANGE_SLACK or high > 1.0 + OUT_OF_RANGE_SLACK:
            raise MethodError(
                f"{self.name}: output values span [{low:.3g}, {high:.3g}]; expected [0, 1] intensities"
            )
        return np.clip(out, 0.0, 1.0)

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, scale: int) -> None:
        """Do one-time work for ``scale`` (load a model, warm up) outside the timed call."""

    # ------------------------------------------------------------------ training
    def fit(self, images: Sequence[np.ndarray], scale: int) -> Method:
        """Learn the artifacts for one scale from HR training luminance images (uint8).

        Returns ``self``. Fitted state is kept in ``self.artifacts_[scale]`` and
        ``self.manifests_[scale]``.
        """
        if not self.trainable:
            raise MethodError(f"{self.name} is not trainable")
        scale = self.check_scale(scale)
        import time

        start = time.perf_counter()
        tensors, info = self._fit_scale(list(images), scale)
        manifest = {
            "method": self.name,
            "version": self.version,
            "scale": scale,
            "params": _jsonable(self._recorded_params()),
            "training_data_sha256": training_data_hash(images),
            "training_images": len(images),
            "duration_s": round(time.perf_counter() - start, 3),
            **_jsonable(info),
        }
        self._store_artifacts(scale, tensors, manifest)
        return self

    def _recorded_params(self) -> dict[str, Any]:
        """The parameters a manifest records: all but the runtime folders.

        Where checkpoints or caches lived says nothing about how an artifact was made, and
        an absolute path would carry the training machine's layout into the repository.
        """
        return {
            key: value
            for key, value in self.get_params().items()
            if not (key in self.runtime_params and key.endswith("_dir"))
        }

    def _fit_scale(
        self, images: list[np.ndarray], scale: int
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Learn artifacts for one scale: return (named arrays, extra manifest fields)."""
        raise NotImplementedError

    def _restore(self, scale: int, tensors: Mapping[str, np.ndarray]) -> None:
        """Rebuild inference state for ``scale`` from saved arrays (default: nothing)."""

    def _store_artifacts(self, scale: int, tensors: dict[str, np.ndarray], manifest: dict) -> None:
        if not hasattr(self, "artifacts_"):
            self.artifacts_ = {}
            self.manifests_ = {}
        arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        self.artifacts_[scale] = arrays
        self.manifests_[scale] = manifest
        self._restore(scale, arrays)

    # ------------------------------------------------------------------ persistence
    @classmethod
    def weights_dir(cls) -> Path:
        """Where shipped artifacts live: ``weights/<name>/`` beside the plugin's module."""
        return Path(inspect.getfile(cls)).resolve().parent / "weights" / cls.name

    def save(self, directory: str | Path | None = None) -> Path:
        """Write ``x{scale}.safetensors`` and ``x{scale}.json`` for every fitted scale."""
        from safetensors.numpy import save_file

        directory = Path(directory) if directory is not None else self.weights_dir()
        if not getattr(self, "artifacts_", None):
            raise NotFittedError(f"{self.name}: nothing to save, fit first")
        directory.mkdir(parents=True, exist_ok=True)
        for scale, tensors in self.artifacts_.items():
            stem = directory / f"x{scale}"
            tmp = stem.with_suffix(".tmp")
            # No header metadata: safetensors writes it in varying key order, which would
            # make identical tensors hash differently; the JSON manifest says what it is.
            save_file(tensors, str(tmp))
            tmp.replace(stem.with_suffix(ARTIFACT_SUFFIX))
            manifest = dict(self.manifests_[scale])
            manifest["artifact_sha256"] = file_hash(stem.with_suffix(ARTIFACT_SUFFIX))
            stem.with_suffix(MANIFEST_SUFFIX).write_text(json.dumps(manifest, indent=2) + "\n")
            self.manifests_[scale] = manifest
        return directory

    def load(self, directory: str | Path | None = None, scales: Sequence[int] | None = None) -> Method:
        """Load artifacts saved by :meth:`save` (every scale found, or just ``scales``)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        directory = Path(directory) if directory is not None else self.weights_dir()
        wanted = sorted(self.scales) if scales is None else [self.check_scale(s) for s in scales]
        found = False
        for scale in wanted:
            path = directory / f"x{scale}{ARTIFACT_SUFFIX}"
            if not path.exists():
                if scales is not None:
                    raise ArtifactError(f"{self.name}: no artifacts for x{scale} in {directory}")
                continue
            try:
                tensors = load_file(str(path))
            except (SafetensorError, OSError, ValueError) as exc:
                raise ArtifactError(f"{self.name}: cannot read {path}: {exc}") from exc
            manifest_path = path.with_suffix(MANIFEST_SUFFIX)
            manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
            self._store_artifacts(scale, tensors, manifest)
            found = True
        if not found and scales is None:
            raise ArtifactError(
                f"{self.name}: no artifacts in {directory}; run `srbench train {self.name}`"
            )
        return self

    def artifact_hash(self, scale: int) -> str:
        """Content hash of the artifacts used at ``scale`` ('' for untrained methods)."""
        if not self.trainable:
            return ""
        tensors = getattr(self, "artifacts_", {}).get(scale)
        if tensors is None:
            return ""
        digest = hashlib.sha256()
        for key in sorted(tensors):
            array = np.ascontiguousarray(tensors[key])
            digest.update(key.encode())
            digest.update(str(array.dtype).encode())
            digest.update(str(array.shape).encode())
            digest.update(array.tobytes())
        return digest.hexdigest()[:16]


def convert_setting(key: str, text: str, current: Any) -> Any:
    """The value of ``KEY=text``, converted to the type of ``current`` (its present value)."""
    if text.lower() == "none":
        return None
    try:
        if isinstance(current, bool):
            words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            return words[text.lower()]
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            parts = [part.strip() for part in text.split(",") if part.strip()]
            if current:
                return tuple(type(current[0])(part) for part in parts)
            return tuple(_number(part) for part in parts)  # an empty default names no type
    except (KeyError, ValueError, IndexError):
        kind = type(current).__name__
        raise MethodError(f"{key}={text!r}: expected a {kind} like {current!r}") from None
    if current is None:  # no type to go by: a number if it reads as one
        try:
            return _number(text)
        except ValueError:
            pass
    return text


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def training_data_hash(images: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for image in images:
        array = np.ascontiguousarray(image)
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def file_hash(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
