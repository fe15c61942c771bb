"""Bringing a user's network in: its class from ``FILE.py:Class``, its weights from a file.

Every way this can go wrong ends in one :class:`ModelError` line that names the problem:
a bad path, a missing class, a pickle that ``torch.load(weights_only=True)`` refuses, or
weights that do not fit the module (missing or unexpected keys, wrong shapes).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srbench.method import MethodError

__all__ = ["ModelError", "load_module_class", "load_state_dict", "fit_state_dict", "parse_model_args"]

#: Keys under which training frameworks nest the state dict in a checkpoint (EDSR saves a
#: bare state dict; BasicSR uses "params"/"params_ema"; many scripts "state_dict"/"model").
_NESTED_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")


class ModelError(MethodError):
    """A user's network or its weights cannot be used as given."""


def load_module_class(spec: str) -> type:
    """The ``torch.nn.Module`` subclass named by ``FILE.py:Class`` or ``package.module:Class``."""
    import torch

    source, sep, class_name = spec.rpartition(":")
    if not sep or not source or not class_name:
        raise ModelError(f"--model {spec!r}: expected FILE.py:ClassName or module:ClassName")
    if source.endswith(".py") or "/" in source or "\\" in source:
        module = _import_file(Path(source), spec)
    else:
        try:
            module = importlib.import_module(source)
        except Exception as exc:  # noqa: BLE001 - the user's code: any failure is one line
            raise ModelError(f"--model {spec!r}: cannot import {source}: {type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        names = sorted(
            n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
        )
        hint = f"; it defines {', '.join(names)}" if names else "; it defines no torch.nn.Module"
        raise ModelError(f"--model {spec!r}: {source} has no class {class_name!r}{hint}")
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ModelError(f"--model {spec!r}: {class_name} is not a torch.nn.Module subclass")
    return cls


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ModelError(f"--model {spec!r}: no such file {path}")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"srbench_model_{path.stem}_{digest}"
    if module_name in sys.modules:  # one module per file: its classes stay the same objects
        return sys.modules[module_name]
    try:
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[module_name] = module
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: any failure is one line
        sys.modules.pop(module_name, None)
        raise ModelError(f"--model {spec!r}: importing {path} failed: {type(exc).__name__}: {exc}") from None
    return module


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a ``.safetensors``, ``.pth`` or ``.pt`` file, never by unpickling code.

    ``.pth``/``.pt`` go through ``torch.load(weights_only=True)``, which refuses any pickle
    that would run code. A checkpoint that nests its weights (``params_ema``, ``params``,
    ``state_dict``, ...) is unwrapped, and DataParallel's ``module.`` prefix is dropped.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"--weights {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelError(f"--weights {path}: not a readable safetensors file ({exc})") from None
    elif path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - UnpicklingError and friends
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"--weights {path}: torch.load(weights_only=True) refuses it ({first}); "
                "save a plain state_dict (torch.save(net.state_dict(), ...)) or safetensors"
            ) from None
    else:
        raise ModelError(f"--weights {path}: unknown weights format {path.suffix!r}; use .safetensors, .pth or .pt")
    state = _unwrap(state, path)
    return {key.removeprefix("module."): value for key, value in state.items()}


def _unwrap(state: Any, path: Path) -> Mapping[str, Any]:
    import torch

    for _ in range(3):
        if isinstance(state, Mapping) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return state
        if isinstance(state, Mapping):
            nested = next((state[k] for k in _NESTED_KEYS if isinstance(state.get(k), Mapping)), None)
            if nested is not None:
                state = nested
                continue
        break
    kind = type(state).__name__
    raise ModelError(f"--weights {path}: holds a {kind}, not a state dict of tensors")


def fit_state_dict(module: Any, state: Mapping[str, Any], *, source: str) -> None:
    """Load ``state`` into ``module`` strictly, or say in one line why it does not fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the module"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key{'s' * (len(missing) > 1)} ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key{'s' * (len(unexpected) > 1)} ({_few(unexpected)})")
    if shapes:
        problems.append(f"wrong shape: {_few(shapes)}")
    if problems:
        raise ModelError(f"{source} does not fit {type(module).__name__}: {'; '.join(problems)}")
    module.load_state_dict(state, strict=True)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def parse_model_args(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` constructor arguments; values read as Python literals where they parse."""
    import ast

    args: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ModelError(f"--model-arg {item!r}: expected KEY=VALUE")
        try:
            args[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            args[key] = text.strip()  # a bare word is a string
    return args
