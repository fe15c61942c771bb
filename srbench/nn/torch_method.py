"""TorchMethod: any PyTorch super-resolution network as an srbench method.

A plugin author subclasses :class:`TorchMethod` and says how to build the network and where
its weights are; ``srbench run --model FILE.py:Class --weights FILE`` makes such a subclass
on the fly (:func:`module_method`). Either way the network is scored like every other
method, under the protocol's rules, keyed by the hash of its weights.

What real networks differ in is class metadata: ``channels`` ("rgb" or "y"),
``input_range`` (1 for [0, 1] inputs, 255 for EDSR-style [0, 255]), ``rgb_mean`` (a mean
shift subtracted before and added after the network, in [0, 1] units). Inference options
are parameters: tiled inference with overlap for images that do not fit, the x8
self-ensemble, CUDA with optional fp16. Torch is imported only when a network is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from srbench.method import Method, MethodError, file_hash

__all__ = ["TorchMethod", "module_method"]


class TorchMethod(Method):
    """Base class of methods that run a PyTorch module.

    Subclasses set the usual metadata (``name``, ``label``, ``scales``, ``version``) and
    implement :meth:`build` (the module for a scale) and :meth:`weights_path` (its weights:
    ``.safetensors``, or a ``.pth``/``.pt`` state dict read with ``weights_only=True``).

    Parameters
    ----------
    tile : int, optional
        Run the network on LR tiles of this size (for images that do not fit in memory).
    tile_overlap : int
        LR pixels of context around each tile; at least the receptive-field radius for
        the tiled output to equal the untiled one.
    self_ensemble : bool
        Average the outputs over the 8 flips/rotations of the input (the "+" of EDSR-era
        tables); eight times the work.
    fp16 : bool
        Run in half precision (CUDA only).
    device : {"auto", "cpu", "cuda"}
    threads : int, optional
        Torch CPU threads (default: torch's own choice).
    """

    devices = ("cpu", "cuda")
    runtime_params = frozenset({"device", "threads"})
    #: "rgb": upscale gets and returns (H, W, 3); "y": luminance (H, W).
    channels: ClassVar[str] = "rgb"
    #: The intensity the network expects for white: 1 or 255.
    input_range: ClassVar[float] = 1.0
    #: Per-channel mean (in [0, 1] units) subtracted before the network and added after.
    rgb_mean: ClassVar[tuple[float, ...] | None] = None

    def __init__(
        self,
        *,
        tile: int | None = None,
        tile_overlap: int = 16,
        self_ensemble: bool = False,
        fp16: bool = False,
        device: str = "auto",
        threads: int | None = None,
    ) -> None:
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.self_ensemble = self_ensemble
        self.fp16 = fp16
        self.device = device
        self.threads = threads

    # ------------------------------------------------------------------ what subclasses give
    def build(self, scale: int):
        """The ``torch.nn.Module`` that serves ``scale`` (untrained; weights are loaded after)."""
        raise NotImplementedError

    def weights_path(self, scale: int) -> Path:
        """The weights file of the network that serves ``scale``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ identity
    def artifact_hash(self, scale: int) -> str:
        """Hash of the weights file: what identifies the network in result keys."""
        return file_hash(self.weights_path(scale))[:16]

    @property
    def fitted_scales(self) -> frozenset[int]:
        return frozenset(self.scales)

    def efficiency(self, scale: int) -> dict[str, int]:
        """Parameters and MACs of the network for a 256x256 LR input (no self-ensemble)."""
        from srbench.nn.efficiency import count_macs, count_parameters

        module, device = self._network(scale)
        channels = 3 if self.channels == "rgb" else 1
        return {"parameters": count_parameters(module), "macs": count_macs(lambda x: module(x.to(device)), channels)}

    # ------------------------------------------------------------------ inference
    def _network(self, scale: int):
        nets = self.__dict__.setdefault("_nets", {})
        if scale not in nets:
            import torch

            from srbench.nn.infer import resolve_device
            from srbench.nn.loading import fit_state_dict, load_state_dict

            if self.threads:
                torch.set_num_threads(int(self.threads))
            device = resolve_device(self.device)
            if self.fp16 and device.type != "cuda":
                raise MethodError(f"{self.name}: fp16 needs a CUDA device (got {device.type})")
            module = self.build(scale)
            path = self.weights_path(scale)
            fit_state_dict(module, load_state_dict(path), source=f"weights {Path(path).name}")
            module = module.to(device).eval()
            if self.fp16:
                module = module.half()
            nets[scale] = (module, device)
        return nets[scale]

    def prepare(self, scale: int) -> None:
        """Build the network, load its weights and run it once, outside the timed call."""
        scale = self.check_scale(scale)
        shape = (24, 24, 3) if self.channels == "rgb" else (24, 24)
        self._upscale(np.zeros(shape, np.float32), scale)

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        import torch

        from srbench.nn.tiling import self_ensemble, tiled

        module, device = self._network(scale)
        dtype = torch.float16 if self.fp16 else torch.float32
        x = torch.from_numpy(np.array(lr, dtype=np.float32))  # a writable copy
        x = x.permute(2, 0, 1) if x.ndim == 3 else x[None]
        mean = torch.tensor(self.rgb_mean or (0.0,) * x.shape[0], dtype=torch.float32).view(-1, 1, 1)
        if mean.shape[0] != x.shape[0]:
            raise MethodError(f"{self.name}: rgb_mean has {mean.shape[0]} values for {x.shape[0]} channels")
        x = ((x - mean) * self.input_range)[None].to(device=device, dtype=dtype)

        def forward(t):
            return tiled(module, t, scale, tile=self.tile, overlap=self.tile_overlap)

        with torch.inference_mode():
            y = self_ensemble(forward, x) if self.self_ensemble else forward(x)
            y = y.float()[0] / self.input_range + mean.to(y.device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # the caller's clock measures the work itself
        out = y.cpu().numpy()
        if out.shape[0] != x.shape[1]:
            raise MethodError(f"{self.name}: the network returned {out.shape[0]} channels for {x.shape[1]}")
        return out.transpose(1, 2, 0) if self.channels == "rgb" else out[0]


def module_method(
    module_class: type,
    weights: str | Path,
    *,
    name: str,
    label: str | None = None,
    scales: frozenset[int] | set[int],
    model_args: Mapping[str, Any] | None = None,
    channels: str = "rgb",
    input_range: float = 1.0,
    rgb_mean: tuple[float, ...] | None = None,
) -> type[TorchMethod]:
    """A :class:`TorchMethod` subclass for ``module_class(**model_args)`` with ``weights``.

    What ``srbench run --model FILE.py:Class --weights FILE`` registers. The weights serve
    every scale in ``scales``; if the module takes its scale as a constructor argument,
    give it in ``model_args``.
    """
    if channels not in ("rgb", "y"):
        raise MethodError(f"channels must be 'rgb' or 'y'; got {channels!r}")
    if input_range not in (1.0, 255.0):
        raise MethodError(f"input range must be 1 or 255; got {input_range!r}")
    arguments = dict(model_args or {})
    path = Path(weights).resolve()

    def build(self, scale: int):
        try:
            return module_class(**arguments)
        except TypeError as exc:
            raise MethodError(f"{module_class.__name__}({_call(arguments)}) failed: {exc}") from None

    def weights_path(self, scale: int) -> Path:
        return path

    # What changes the function besides the weights is part of the version, so of the key.
    recipe = repr((sorted(arguments.items()), channels, float(input_range), rgb_mean))
    attributes = {
        "name": name,
        "label": label or name,
        "scales": frozenset(scales),
        "version": "1+" + hashlib.sha256(recipe.encode()).hexdigest()[:8],
        "channels": channels,
        "input_range": float(input_range),
        "rgb_mean": tuple(rgb_mean) if rgb_mean else None,
        "citation": f"user network {module_class.__module__}.{module_class.__qualname__}",
        "model_args": arguments,
        "build": build,
        "weights_path": weights_path,
        "__module__": __name__,
    }
    return type(f"Module_{name}", (TorchMethod,), attributes)


def _call(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())
