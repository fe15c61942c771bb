"""srbench: a benchmarking harness for single-image super-resolution."""

from srbench.method import (
    ArtifactError,
    Method,
    MethodError,
    NotFittedError,
    UnsupportedScaleError,
)
from srbench.nn.torch_method import TorchMethod
from srbench.registry import get_registry, register

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "Method",
    "MethodError",
    "NotFittedError",
    "TorchMethod",
    "UnsupportedScaleError",
    "__version__",
    "get_registry",
    "load_results",
    "register",
]


def __getattr__(name: str):
    # ``srbench.load_results`` without importing the store (or pandas) on ``import srbench``.
    if name == "load_results":
        from srbench.results import load_results

        return load_results
    raise AttributeError(f"module 'srbench' has no attribute {name!r}")
