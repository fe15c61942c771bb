from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def data_root() -> Path | None:
    env = os.environ.get("SRBENCH_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(SHARED / "datasets")
    for path in candidates:
        if (path / "Set5").is_dir() and (path / "Set14").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = data_root()
    if path is None:
        pytest.skip("Set5/Set14 not available: set SRBENCH_DATA")
    return path


@pytest.fixture(scope="session")
def reference_table() -> Path:
    path = SHARED / "reference" / "srcnn_eccv2014_table.csv"
    if not path.exists():
        pytest.skip("the shared reference table is not available")
    return path


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Environment with a private cache/store, and the hub unreachable."""
    monkeypatch.setenv("SRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SRBENCH_STORE", str(tmp_path / "store.sqlite"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return dict(os.environ)


def srbench_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run the CLI in a fresh interpreter (its registry state stays out of this process)."""
    env = dict(env if env is not None else os.environ)
    env["COLUMNS"] = "400"  # keep rich tables on one line per row
    return subprocess.run(
        [sys.executable, "-m", "srbench.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
    )


def natural_image(shape=(60, 54), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    img = 120 + 60 * np.sin(xx / 6) * np.cos(yy / 9) + 40 * ((xx + yy) % 23 < 11) + rng.normal(0, 8, shape)
    return np.clip(img, 0, 255).astype(np.uint8)
