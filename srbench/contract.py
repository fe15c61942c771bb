"""The plugin contract: what every method must do, checked the same way for everyone.

``srbench check NAME`` runs it on one method, and the test suite runs it over every
registered method, so a new plugin is tested the moment it is registered (like
scikit-learn's ``check_estimator``).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from srbench.method import Method, UnsupportedScaleError

__all__ = ["Check", "ContractReport", "HEAVY_MODULES", "check_method", "contract_image"]

#: Modules a plugin must not import at module level (``srbench list`` stays instant).
HEAVY_MODULES = ("torch", "sklearn", "tensorflow", "jax", "cv2", "numba")
IMPORT_BUDGET_S = 1.0


@dataclass
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass
class ContractReport:
    method: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def contract_image(shape: tuple[int, int] = (36, 30), seed: int = 0) -> np.ndarray:
    """A deterministic LR test image with smooth areas, edges and texture, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    smooth = 0.5 + 0.25 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    edges = 0.2 * ((xx + 0.6 * yy) % 17 < 8)
    texture = 0.05 * rng.standard_normal(shape)
    return np.clip(smooth + edges + texture - 0.1, 0.0, 1.0).astype(np.float32)


def _run(name: str, report: ContractReport, fn: Callable[[], str | None]) -> None:
    try:
        detail = fn() or ""
        report.checks.append(Check(name, True, detail))
    except AssertionError as exc:
        report.checks.append(Check(name, False, str(exc)))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a finding
        report.checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))


def _import_cost(cls: type[Method]) -> str:
    """Import the plugin's module in a fresh interpreter; time it and list heavy imports."""
    path = inspect.getfile(cls)
    script = textwrap.dedent(
        f"""
        import sys, time, importlib.util
        import srbench, srbench.registry
        before = set(sys.modules)
        start = time.perf_counter()
        spec = importlib.util.spec_from_file_location("srbench_contract_probe", {path!r})
        module = importlib.util.module_from_spec(spec)
        srbench.registry._REGISTRY._discovered = True  # only this module, nothing else
        try:
            spec.loader.exec_module(module)
        except Exception:
            pass  # a name clash with the already-registered class is fine here
        elapsed = time.perf_counter() - start
        heavy = sorted({{m.split('.')[0] for m in set(sys.modules) - before}} & set({HEAVY_MODULES!r}))
        print(elapsed, ",".join(heavy))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"importing {path} failed: {out.stderr.strip().splitlines()[-1:]}")
    elapsed_s, heavy = out.stdout.strip().split(" ") if " " in out.stdout.strip() else (out.stdout.strip(), "")
    elapsed = float(elapsed_s)
    assert not heavy, f"importing the module pulls in {heavy}; import them inside methods"
    assert elapsed < IMPORT_BUDGET_S, f"importing the module takes {elapsed:.2f} s (budget {IMPORT_BUDGET_S} s)"
    return f"{elapsed * 1000:.0f} ms"


def check_method(cls: type[Method], *, check_import: bool = True) -> ContractReport:
    """Run the plugin contract on a method class.

    Checks: metadata; ``__init__`` stores parameters (sklearn's rule); cheap import; for
    every supported scale with artifacts: output shape = LR shape x scale, float32, finite,
    within [0, 1], deterministic, input not mutated; an unsupported scale raises
    :class:`~srbench.method.UnsupportedScaleError`; save/load round trip gives identical
    output.
    """
    report = ContractReport(cls.name or cls.__name__)

    def metadata() -> str:
        assert cls.name and cls.name == cls.name.lower(), f"name {cls.name!r} must be lowercase"
        assert cls.label, "label is empty"
        assert cls.scales and all(isinstance(s, int) and s >= 1 for s in cls.scales), "bad scales"
        assert isinstance(cls.version, str) and cls.version, "version must be a non-empty string"
        return f"{cls.label}, scales {sorted(cls.scales)}, version {cls.version}"

    _run("metadata", report, metadata)

    state: dict[str, Method] = {}

    def params() -> str:
        method = cls()
        signature = inspect.signature(cls.__init__)
        for p in signature.parameters.values():
            if p.name == "self" or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                continue
            assert p.default is not inspect.Parameter.empty, f"parameter {p.name!r} needs a default"
            assert hasattr(method, p.name), f"__init__ does not store {p.name!r} under its own name"
            value = getattr(method, p.name)
            assert value is p.default or value == p.default, (
                f"__init__ changes {p.name!r} ({p.default!r} -> {value!r}); keep it as given"
            )
        learned = [a for a in vars(method) if a.endswith("_") and not a.startswith("_")]
        assert not learned, f"__init__ sets learned attributes {learned}"
        clone = cls(**method.get_params())
        assert clone.get_params() == method.get_params(), "get_params/set_params do not round-trip"
        state["method"] = method
        return ", ".join(f"{k}={v!r}" for k, v in method.get_params().items()) or "no parameters"

    _run("parameters", report, params)
    if check_import:
        _run("cheap import", report, lambda: _import_cost(cls))
    method = state.get("method")
    if method is None:
        return report

    def artifacts() -> str:
        if not method.trainable:
            return "not trainable"
        method.load()
        missing = sorted(set(method.scales) - method.fitted_scales)
        assert not missing, f"no artifacts for scales {missing} in {method.weights_dir()}"
        return f"loaded x{', x'.join(str(s) for s in sorted(method.fitted_scales))}"

    _run("artifacts", report, artifacts)
    lr = contract_image()

    for scale in sorted(method.fitted_scales):

        def output(scale: int = scale) -> str:
            before = lr.copy()
            out = method.upscale(lr, scale)
            assert np.array_equal(lr, before), "upscale modified its input"
            assert isinstance(out, np.ndarray), f"returned {type(out).__name__}"
            expected = (lr.shape[0] * scale, lr.shape[1] * scale)
            assert out.shape == expected, f"shape {out.shape}, expected {expected}"
            assert out.dtype == np.float32, f"dtype {out.dtype}, expected float32"
            assert np.all(np.isfinite(out)), "non-finite values"
            assert out.min() >= 0.0 and out.max() <= 1.0, f"values in [{out.min()}, {out.max()}]"
            again = method.upscale(lr.copy(), scale)
            assert np.array_equal(out, again), "two calls on the same input differ"
            return f"{expected[1]}x{expected[0]}"

        _run(f"output x{scale}", report, output)

    def unsupported() -> str:
        bad = max(method.scales) + 1
        while bad in method.scales:
            bad += 1
        try:
            method.upscale(lr, bad)
        except UnsupportedScaleError as exc:
            return str(exc)
        raise AssertionError(f"scale {bad} did not raise UnsupportedScaleError")

    _run("unsupported scale", report, unsupported)

    if method.trainable and method.fitted_scales:

        def roundtrip() -> str:
            scale = min(method.fitted_scales)
            with tempfile.TemporaryDirectory() as tmp:
                method.save(tmp)
                fresh = cls(**method.get_params()).load(tmp)
                assert fresh.artifact_hash(scale) == method.artifact_hash(scale), "artifact hash changed"
                a = method.upscale(lr, scale)
                b = fresh.upscale(lr, scale)
                assert np.array_equal(a, b), "output after save/load differs"
            return f"x{scale} identical"

        _run("save/load round trip", report, roundtrip)

    def speed() -> str:
        scale = min(method.fitted_scales) if method.fitted_scales else min(method.scales)
        start = time.perf_counter()
        method.upscale(lr, scale)
        return f"{(time.perf_counter() - start) * 1000:.1f} ms on a {lr.shape[1]}x{lr.shape[0]} input"

    if method.fitted_scales:
        _run("timing (info)", report, speed)
    return report
