"""Method variants: a registered method run with some of its parameters changed.

``srbench run -m fsrcnn --set border=layers`` runs FSRCNN with the reference per-layer
padding. Those results must never pass for the default's: they are stored under the
variant name ``fsrcnn[border=layers]`` with the label "FSRCNN (border=layers)", so tables
and reports give them a row of their own and the default's cached cells stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from srbench.method import Method, MethodError

__all__ = ["base_name", "run_settings", "settable_defaults", "split_variant", "variant_names"]


def settable_defaults(cls: type[Method]) -> dict[str, Any]:
    """The parameters ``srbench run --set`` may change for ``cls``, with their defaults.

    Every output-changing parameter of an untrained method; only the inference parameters
    of a trained one (the rest were fixed when its artifacts were fitted).
    """
    params = cls().get_params()
    free = cls.inference_params if cls.trainable else set(params) - cls.runtime_params
    return {key: params[key] for key in sorted(free) if key in params}


def run_settings(cls: type[Method], settings: Sequence[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` settings for running ``cls``, typed like its parameters.

    A trainable method's artifacts were fitted with its training parameters, so only the
    parameters that act at inference (``inference_params``) and the run-time ones (device,
    threads) may change without retraining.

    Raises
    ------
    MethodError
        For an unknown parameter, a malformed setting, or a training parameter.
    """
    if not settings:
        return {}
    method = cls()
    parsed = method.parse_settings(settings)
    if method.trainable:
        fixed = sorted(set(parsed) - method.runtime_params - method.inference_params)
        if fixed:
            free = list(settable_defaults(cls)) or ["none"]
            raise MethodError(
                f"{cls.name}: {', '.join(fixed)} was fixed when its artifacts were trained "
                f"(retrain with `srbench train {cls.name} --set ...`); settable at run time: "
                f"{', '.join(free)}"
            )
    return parsed


def variant_names(cls: type[Method], settings: Mapping[str, Any]) -> tuple[str, str]:
    """The (name, label) results are stored under: the method's own for its defaults."""
    defaults = cls().get_params()
    changed = {
        key: value
        for key, value in settings.items()
        if key not in cls.runtime_params and defaults.get(key) != value
    }
    if not changed:
        return cls.name, cls.label
    # Not a comma: --methods filters split on commas.
    text = ";".join(f"{key}={_text(value)}" for key, value in sorted(changed.items()))
    return f"{cls.name}[{text}]", f"{cls.label} ({text})"


def split_variant(spec: str) -> tuple[str, list[str]]:
    """A method spec and its inline settings: the stored name of a variant runs it again.

    ``"fsrcnn[border=layers]"`` gives ``("fsrcnn", ["border=layers"])``; several settings are
    separated by ``;``. Plain names and wildcards (``ne_*``, ``[ab]*``) have no settings.
    """
    spec = spec.strip()
    head, bracket, rest = spec.partition("[")
    if bracket and head and rest.endswith("]") and "=" in rest:
        return head, [item for item in rest[:-1].split(";") if item.strip()]
    return spec, []


def base_name(name: str) -> str:
    """The registered method behind a stored name: ``fsrcnn[border=layers]`` -> ``fsrcnn``."""
    return name.partition("[")[0]


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "/".join(_text(v) for v in value)
    return str(value)
