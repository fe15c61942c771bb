"""The plugin contract, run over every registered method (new plugins are covered at once)."""

import numpy as np
import pytest

from srbench import Method
from srbench.contract import check_method
from srbench.protocol import imresize
from srbench.registry import get_registry

REGISTRY = get_registry()


def test_every_builtin_module_loads():
    assert not REGISTRY.errors, "\n".join(str(e) for e in REGISTRY.errors)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_method_meets_the_contract(name):
    report = check_method(REGISTRY.get(name))
    failures = "\n".join(f"{c.name}: {c.detail}" for c in report.failures())
    assert report.passed, failures


class Mutating(Method):
    name = "mutating"
    label = "Mutating"

    def __init__(self):
        pass

    def upscale(self, lr, scale):
        self.check_scale(scale)
        lr[0, 0] = 0.0
        return imresize(lr, scale).clip(0, 1).astype(np.float32)


class Noisy(Method):
    name = "noisy"
    label = "Noisy"

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        noise = np.random.default_rng().normal(0, 0.01, (lr.shape[0] * scale, lr.shape[1] * scale))
        return (imresize(lr, scale) + noise).clip(0, 1)


class Rescaling(Method):
    name = "rescaling"
    label = "Rescaling"

    def __init__(self, *, strength=0.1):
        self.strength = strength * 2

    def _upscale(self, lr, scale):
        return imresize(lr, scale).clip(0, 1)


def test_contract_catches_mutation():
    report = check_method(Mutating, check_import=False)
    assert not report.passed
    assert any("modified its input" in c.detail for c in report.failures())


def test_contract_catches_nondeterminism():
    report = check_method(Noisy, check_import=False)
    assert any("differ" in c.detail for c in report.failures())


def test_contract_catches_changed_parameters():
    report = check_method(Rescaling, check_import=False)
    assert [c.name for c in report.failures()] == ["parameters"]
    assert "keep it as given" in report.failures()[0].detail
