import sys
import textwrap

import pytest

from srbench.method import Method
from srbench.registry import Registry, UnknownMethodError, get_registry
from tests import plugin_sources
from tests.conftest import srbench_cli


def test_builtin_methods_are_found():
    registry = get_registry()
    assert "bicubic" in registry.names()
    assert registry.names("bic*") == ["bicubic"]
    assert not [e for e in registry.errors if "methods" in e.origin and "bicubic" in e.origin]


def test_did_you_mean():
    with pytest.raises(UnknownMethodError, match="did you mean 'bicubic'"):
        get_registry().get("bicubik")
    assert get_registry().get("BICUBIC").name == "bicubic"


def test_plugin_file_is_loaded(tmp_path):
    plugin = tmp_path / "nearest_plugin.py"
    plugin.write_text(plugin_sources.GOOD.format(name="nearest", label="Nearest"))
    out = srbench_cli("list", "methods", "--plugin", str(plugin))
    assert out.returncode == 0, out.stderr
    assert "nearest" in out.stdout and str(plugin) in out.stdout.replace("\n", "")


def test_plugin_module_is_loaded(tmp_path, monkeypatch):
    (tmp_path / "my_sr_module.py").write_text(plugin_sources.GOOD.format(name="modnearest", label="ModNearest"))
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = srbench_cli("list", "methods", "mod*", "--plugin", "my_sr_module", env=env)
    assert out.returncode == 0, out.stderr
    assert "modnearest" in out.stdout and "module my_sr_module" in out.stdout


def test_entry_point_plugin_is_loaded(tmp_path):
    # An installed distribution, as pip would leave it: a module and dist-info with entry points.
    (tmp_path / "ep_nearest.py").write_text(plugin_sources.GOOD.format(name="epnearest", label="EpNearest"))
    info = tmp_path / "ep_nearest-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-nearest\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[srbench.methods]\nepnearest = ep_nearest:Nearest\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    out = srbench_cli("list", "methods", "ep*", env=env)
    assert out.returncode == 0, out.stderr
    assert "epnearest" in out.stdout and "entry point" in out.stdout


def test_broken_plugin_is_reported_with_origin_and_others_run(tmp_path, data_dir, isolated_env):
    broken = tmp_path / "broken_plugin.py"
    broken.write_text(plugin_sources.BROKEN)
    good = tmp_path / "good_plugin.py"
    good.write_text(plugin_sources.GOOD.format(name="nearest", label="Nearest"))
    out = srbench_cli(
        "run", "-m", "nearest,bicubic", "-d", "Set5", "-s", "2",
        "--plugin", str(broken), "--plugin", str(good), "--data-dir", str(data_dir),
        env=isolated_env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert str(broken) in out.stderr.replace("\n", "") and "a_module_that_does_not_exist" in out.stderr
    assert "0 cached, 10 run" in out.stdout


def test_registry_reports_failures_in_process(tmp_path):
    registry = Registry()
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('broken on purpose')\n")
    registry.load_plugin(str(bad))
    registry.load_plugin(str(tmp_path / "missing.py"))
    assert [e.origin for e in registry.errors] == [str(bad), str(tmp_path / "missing.py")]
    assert "broken on purpose" in registry.errors[0].message


def test_registration_validates_metadata():
    registry = Registry()

    class NoName(Method):
        label = "x"

    with pytest.raises(Exception, match="lowercase name"):
        registry.add(NoName, "test")


def test_split_variant_keeps_wildcards_and_names_apart():
    from srbench.variants import split_variant

    assert split_variant("fsrcnn[border=layers]") == ("fsrcnn", ["border=layers"])
    assert split_variant(" anr[lam=0.1;neighborhood=20] ") == ("anr", ["lam=0.1", "neighborhood=20"])
    assert split_variant("[ab]*") == ("[ab]*", [])
    assert split_variant("ne_*") == ("ne_*", [])


def test_the_wheel_lists_every_package_and_registers_every_builtin():
    import tomllib

    from tests.conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    config = project["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "srbench").rglob("__init__.py")
    } | {
        ".".join(("srbench._methods",) + init.parent.relative_to(ROOT / "methods").parts)
        for init in (ROOT / "methods").rglob("__init__.py")
    }
    assert set(config["packages"]) == on_disk
    assert config["package-dir"]["srbench._methods"] == "methods"
    families_with_weights = {
        "srbench._methods." + d.parent.name for d in (ROOT / "methods").glob("*/weights")
    }
    for family in families_with_weights:
        assert "weights/*/*.safetensors" in config["package-data"][family]
    # Every class in methods/ that the registry knows is reached through an entry point.
    points = project["project"]["entry-points"]["srbench.methods"]
    builtins = {n for n, e in get_registry().entries.items() if e.builtin}
    assert set(points) == builtins and len(builtins) == 12


def test_builtin_methods_come_in_through_entry_points():
    registry = get_registry()
    for name in ("bicubic", "sc", "anr", "fsrcnn"):
        entry = registry.entries[name]
        assert entry.builtin and entry.origin.startswith(f"entry point {name} = srbench._methods.")


def test_a_family_keeps_its_weights_beside_its_code():
    registry = get_registry()
    for name in registry.names():
        entry = registry.entries[name]
        if entry.builtin and entry.cls.trainable:
            weights = entry.cls.weights_dir()
            assert weights.parent.name == "weights" and weights.parent.parent.parent.name in (
                "methods", "_methods"
            ), weights
            assert sorted(p.name for p in weights.glob("x*.safetensors")), name


def test_shipped_manifests_carry_no_machine_paths():
    """A manifest records how an artifact was made, never where its builder kept files."""
    import json

    from tests.conftest import ROOT

    manifests = sorted((ROOT / "methods").glob("*/weights/*/x*.json"))
    assert manifests, "the built-in methods ship no manifests"
    for path in manifests:
        manifest = json.loads(path.read_text())
        assert not [k for k in manifest.get("params", {}) if k.endswith("_dir")], path
        text = path.read_text()
        assert '"/' not in text and ":\\\\" not in text, path
