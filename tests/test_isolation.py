"""A method under test runs where the HR image is not: it cannot read the answer."""

import numpy as np

from srbench.protocol import degrade, modcrop
from srbench.registry import Registry
from srbench.runner import RunConfig, Runner
from srbench.store import ResultStore
from tests import plugin_sources


def _peeking(tmp_path):
    path = tmp_path / "peeking_plugin.py"
    path.write_text(plugin_sources.PEEKING)
    registry = Registry().discover()
    registry.load_plugin(str(path))
    return registry.get("peeking")


def test_the_peeking_plugin_cheats_where_the_hr_image_is_reachable(tmp_path, data_dir):
    """The control: in the process that holds the HR image, the search succeeds."""
    from srbench.imageio import read_luminance

    peeking = _peeking(tmp_path)()
    hr = modcrop(read_luminance(data_dir / "Set5" / "baby.png"), 3)
    lr = degrade(hr, 3)
    out = peeking.upscale(lr, 3)
    assert np.array_equal(np.round(out * 255).astype(np.uint8), hr)


def test_a_method_never_holds_the_hr_image_and_scores_like_bicubic(tmp_path, data_dir):
    path = tmp_path / "peeking_plugin.py"
    path.write_text(plugin_sources.PEEKING)
    registry = Registry().discover()
    registry.load_plugin(str(path))
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = Runner(store, registry).run(
            RunConfig(methods=["peeking", "bicubic"], datasets=["Set5"], scales=[2, 3], data_dir=data_dir)
        )
        assert summary.run == 20 and summary.failed == 0
        results = {(r.method, r.image, r.scale): r.psnr for r in store.results()}
    for (method, image, scale), value in results.items():
        if method == "peeking":
            assert np.isfinite(value)
            assert abs(value - results[("bicubic", image, scale)]) < 1e-9, (image, scale)


def test_pool_workers_get_no_hr_image_either(tmp_path, data_dir):
    path = tmp_path / "peeking_plugin.py"
    path.write_text(plugin_sources.PEEKING)
    registry = Registry().discover()
    registry.load_plugin(str(path))
    with ResultStore(tmp_path / "s.sqlite") as store:
        Runner(store, registry).run(
            RunConfig(methods=["peeking", "bicubic"], datasets=["Set5"], scales=[4], data_dir=data_dir, jobs=2)
        )
        results = {(r.method, r.image): r.psnr for r in store.results()}
    assert all(abs(results[("peeking", i)] - results[("bicubic", i)]) < 1e-9 for m, i in results if m == "peeking")


def test_scored_outputs_are_kept_beside_the_store_by_content(tmp_path, data_dir):
    from srbench.imageio import read_luminance
    from srbench.metrics import psnr
    from srbench.outputs import load_output, output_dir
    from srbench.protocol import imresize, to_uint8

    with ResultStore(tmp_path / "s.sqlite") as store:
        Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[3], data_dir=data_dir))
        rows = {r.image: r for r in store.results()}
    baby = rows["baby"]
    image = load_output(tmp_path / "s.sqlite", baby.output)
    hr = modcrop(read_luminance(data_dir / "Set5" / "baby.png"), 3)
    np.testing.assert_array_equal(image, to_uint8(imresize(degrade(hr, 3), 3)))
    assert psnr(image, hr, border=3) == baby.psnr
    assert len(list(output_dir(tmp_path / "s.sqlite").rglob("*.png"))) == 5
    with ResultStore(tmp_path / "t.sqlite") as store:
        Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[3], data_dir=data_dir,
                                    save_outputs=False))  # fmt: skip
        assert {r.output for r in store.results()} == {None}
