"""Tests of the CNN methods and their shared training loop (CPU, tiny data, a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from srbench._methods.cnn import models

from srbench.method import MethodError
from srbench.nn.data import bicubic_pairs, lr_pairs, split_holdout
from srbench.nn.train import TrainConfig, train
from srbench.protocol import degrade, imresize, modcrop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from srbench._methods.cnn import methods as cnn

CNN_METHODS = [cnn.SRCNNMethod, cnn.SRCNN955Method, cnn.FSRCNNMethod, cnn.ESPCNMethod]


def _images(n: int = 4, size: int = 60, seed: int = 0) -> list[np.ndarray]:
    """Smooth-ish synthetic uint8 images: learnable structure without any dataset."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.random((size // 4, size // 4))
        out.append(np.clip(imresize(base, 4.0) * 255, 0, 255).astype(np.uint8)[:size, :size])
    return out


def _edges_image(size: int) -> np.ndarray:
    """Sharp shapes (a disc, a bar, a ramp): where learned SR clearly beats bicubic."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    image = 60.0 + 120.0 * ((yy - size * 0.55) ** 2 + (xx - size * 0.4) ** 2 < (size * 0.25) ** 2)
    image += 50 * ((xx > size * 0.7) & (xx < size * 0.8))
    image += 0.5 * yy
    return np.clip(image, 0, 255).astype(np.uint8)


def _tiny_srcnn_data():
    x, y = bicubic_pairs(_images(3), 3, size=33, stride=14, margin=6)
    return x[:16], y[:16]


def _build():
    return models.SRCNN(kernels=(9, 1, 5), filters=(8, 4))


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic reductions and fair to a shared machine
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------------- training loop
def test_loss_falls_on_tiny_set():
    x, y = _tiny_srcnn_data()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-3, seed=1)
    result = train(_build, x, y, cfg, device="cpu", progress=False)
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 2
    assert losses[1] < losses[0]


def test_same_seed_same_first_epoch_loss():
    x, y = _tiny_srcnn_data()
    cfg = TrainConfig(epochs=1, batch_size=4, seed=7)
    a = train(_build, x, y, cfg, device="cpu", progress=False)
    b = train(_build, x, y, cfg, device="cpu", progress=False)
    c = train(_build, x, y, TrainConfig(epochs=1, batch_size=4, seed=8), device="cpu",
              progress=False)
    assert a.history[0]["loss"] == b.history[0]["loss"]
    assert a.history[0]["loss"] != c.history[0]["loss"]
    for key in a.state:
        np.testing.assert_array_equal(a.state[key], b.state[key])


def test_killed_run_resumes_from_checkpoint(tmp_path):
    x, y = _tiny_srcnn_data()
    cfg = TrainConfig(epochs=3, batch_size=4, seed=3)
    full = train(_build, x, y, cfg, device="cpu", progress=False)

    ckpt = tmp_path / "run.pt"
    # ``stop_after`` ends the call after one epoch, as a kill after the checkpoint would.
    first = train(_build, x, y, cfg, device="cpu", checkpoint=ckpt, progress=False,
                  stop_after=1)
    assert first.epochs_done == 1 and ckpt.exists()
    resumed = train(_build, x, y, cfg, device="cpu", checkpoint=ckpt, resume=True,
                    progress=False)
    assert resumed.epochs_done == 3
    assert [r["loss"] for r in resumed.history] == pytest.approx(
        [r["loss"] for r in full.history], rel=1e-6
    )
    for key in full.state:
        np.testing.assert_allclose(resumed.state[key], full.state[key], rtol=1e-5, atol=1e-7)

    # A finished run resumed again does nothing; other settings refuse the checkpoint.
    again = train(_build, x, y, cfg, device="cpu", checkpoint=ckpt, resume=True, progress=False)
    assert again.epochs_done == 3
    with pytest.raises(ValueError, match="other settings"):
        train(_build, x, y, TrainConfig(epochs=3, batch_size=2, seed=3), device="cpu",
              checkpoint=ckpt, resume=True, progress=False)


def test_weight_average_is_what_is_validated_and_returned(tmp_path):
    x, y = _tiny_srcnn_data()
    live_cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3, seed=2)
    ema_cfg = TrainConfig(epochs=3, batch_size=4, lr=1e-3, seed=2, ema_decay=0.9)
    live = train(_build, x, y, live_cfg, device="cpu", progress=False)
    seen: list[dict[str, np.ndarray]] = []

    def validate(net, dev):
        seen.append({k: v.detach().clone().numpy() for k, v in net.state_dict().items()})
        return 0.0

    averaged = train(_build, x, y, ema_cfg, device="cpu", progress=False, validate=validate)
    # The same optimisation (the losses are the live network's) ...
    assert [r["loss"] for r in averaged.history] == [r["loss"] for r in live.history]
    # ... but the returned and validated weights are the average, which lags the live ones.
    assert any(not np.allclose(averaged.state[k], live.state[k]) for k in live.state)
    for key in averaged.state:
        np.testing.assert_array_equal(seen[-1][key], averaged.state[key])

    # A killed averaged run resumes its average too.
    ckpt = tmp_path / "ema.pt"
    train(_build, x, y, ema_cfg, device="cpu", checkpoint=ckpt, progress=False, stop_after=1)
    resumed = train(_build, x, y, ema_cfg, device="cpu", checkpoint=ckpt, resume=True,
                    progress=False)
    for key in averaged.state:
        np.testing.assert_allclose(resumed.state[key], averaged.state[key], rtol=1e-5, atol=1e-7)


def test_weight_average_decay_out_of_range_is_refused():
    x, y = _tiny_srcnn_data()
    with pytest.raises(ValueError, match="ema_decay"):
        train(_build, x, y, TrainConfig(epochs=1, batch_size=4, ema_decay=1.0), device="cpu",
              progress=False)


def test_kill_signal_mid_training_then_resume(tmp_path):
    """A real SIGKILL of a training process; the rerun continues from the last epoch."""
    script = tmp_path / "job.py"
    ckpt = tmp_path / "job.pt"
    script.write_text(
        "import sys, os, signal, torch\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "torch.set_num_threads(1)\n"
        "from tests.test_cnn import _tiny_srcnn_data, _build\n"
        "from srbench.nn.train import TrainConfig, train\n"
        "x, y = _tiny_srcnn_data()\n"
        "kill = sys.argv[1] == 'kill'\n"
        "def validate(model, dev):\n"
        "    if kill and os.path.exists(sys.argv[2]):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # dies during epoch 2's validation\n"
        "    return None\n"
        "r = train(_build, x, y, TrainConfig(epochs=3, batch_size=4, seed=5), device='cpu',\n"
        "          checkpoint=sys.argv[2], resume=True, validate=validate, progress=False)\n"
        "print(r.epochs_done, len(r.history))\n"
    )
    killed = subprocess.run([sys.executable, str(script), "kill", str(ckpt)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert killed.returncode != 0
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1
    done = subprocess.run([sys.executable, str(script), "run", str(ckpt)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["3", "3"]


# ---------------------------------------------------------------------- geometry
@pytest.mark.parametrize("arch", ["srcnn", "espcn", "fsrcnn"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_training_windows_match_test_time_output(arch, scale):
    """The valid-convolution training output equals the padded test output in the interior.

    This pins the label geometry of the data pipeline: a sub-image's label is exactly what
    the test-time network predicts for those HR pixels.
    """
    torch.manual_seed(0)
    kwargs = {"filters": (8, 4)} if arch != "fsrcnn" else {"d": 8, "s": 4, "m": 2}
    net = models.build_model(arch, scale, **kwargs).eval()
    if arch == "fsrcnn":
        torch.nn.init.normal_(net.deconv.weight, std=0.1)
    rng = np.random.default_rng(0)
    lr = rng.random((40, 40)).astype(np.float32)
    if arch == "srcnn":
        image = imresize(lr, scale)
        size, y0 = 33, 2 * scale + 4
        margin, out_scale, crop = net.margin, 1, 0
    else:
        image = lr
        size, y0 = 24, 6
        margin, out_scale, crop = net.margin, scale, net.hr_crop
    with torch.no_grad():
        full = net(torch.from_numpy(image)[None, None], pad=True)[0, 0].numpy()
        win = torch.from_numpy(np.ascontiguousarray(image[y0 : y0 + size, y0 : y0 + size]))
        part = net(win[None, None])[0, 0].numpy()
    off = out_scale * (y0 + margin) + crop
    assert full.shape == (image.shape[0] * out_scale,) * 2
    np.testing.assert_allclose(part, full[off : off + part.shape[0], off : off + part.shape[1]],
                               atol=1e-5)


@pytest.mark.parametrize("arch", ["srcnn", "espcn", "fsrcnn"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_symmetric_border_is_a_valid_pass_over_the_mirrored_image(arch, scale):
    """border="symmetric": every output, the border ones too, is what a training (valid)
    pass computes over the image mirrored by the network's reach."""
    from srbench.nn.infer import run_model

    torch.manual_seed(0)
    kwargs = {"filters": (8, 4)} if arch != "fsrcnn" else {"d": 8, "s": 4, "m": 2}
    net = models.build_model(arch, scale, **kwargs).eval()
    if arch == "fsrcnn":
        torch.nn.init.normal_(net.deconv.weight, std=0.1)
    image = np.random.default_rng(1).random((23, 29)).astype(np.float32)
    out_scale = 1 if arch == "srcnn" else scale
    out = run_model(net, image, torch.device("cpu"), border="symmetric")
    assert out.shape == (23 * out_scale, 29 * out_scale)
    mirrored = np.pad(image, net.reach, mode="symmetric")
    with torch.no_grad():
        valid = net(torch.from_numpy(mirrored)[None, None])[0, 0].numpy()
    # The valid output starts margin input pixels (plus hr_crop outputs) into the mirror.
    start = out_scale * (net.reach - net.margin) - net.hr_crop
    np.testing.assert_allclose(out, valid[start : start + out.shape[0], start : start + out.shape[1]],
                               atol=1e-5)
    # Away from the border both test-time modes are the same computation.
    layers = run_model(net, image, torch.device("cpu"), border="layers")
    inner = out_scale * net.reach
    np.testing.assert_allclose(out[inner:-inner, inner:-inner], layers[inner:-inner, inner:-inner],
                               atol=1e-5)
    assert not np.allclose(out, layers, atol=1e-4)  # ... and at the border they differ


def test_unknown_border_is_a_clear_method_error():
    from srbench.method import MethodError

    method = cnn.ESPCNMethod(device="cpu", border="zeros")
    if not (method.weights_dir() / "x3.safetensors").exists():
        pytest.skip("no shipped ESPCN weights")
    method.load(scales=[3])
    with pytest.raises(MethodError, match="border must be one of layers, symmetric; got 'zeros'"):
        method.upscale(np.zeros((20, 20)), 3)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_pairs_labels_are_the_hr_pixels_of_the_window(scale):
    images = _images(2, size=120)
    size, stride, margin, crop = 16, 5, 3, 2
    x, y = lr_pairs(images, scale, size=size, stride=stride, margin=margin, hr_crop=crop)
    hr = modcrop(images[0], scale).astype(np.float32) / 255
    lr = degrade(modcrop(images[0], scale), scale)
    cols = (lr.shape[1] - size) // stride + 1
    k = cols + 1  # second row, second column of the window grid
    ly, lx = stride, stride
    np.testing.assert_array_equal(x[k, 0], lr[ly : ly + size, lx : lx + size])
    off = scale * margin + crop
    label = y.shape[-1]
    assert label == scale * (size - 2 * margin) - 2 * crop
    np.testing.assert_array_equal(
        y[k, 0], hr[scale * ly + off : scale * ly + off + label,
                    scale * lx + off : scale * lx + off + label]
    )


def test_fsrcnn_x3_deconvolution_centres_on_matlab_grid():
    """An impulse at LR pixel i lands centred on HR pixel 3i + 1 (MATLAB imresize's centre)."""
    net = models.FSRCNN(3, d=1, s=1, m=1)
    with torch.no_grad():
        net.deconv.weight.zero_()
        net.deconv.bias.zero_()
        net.deconv.weight[0, 0, 4, 4] = 1.0  # the kernel's centre tap
        feats = torch.zeros(1, 1, 7, 7)
        feats[0, 0, 2, 5] = 1.0
        out = net.deconv(feats)[0, 0]
    assert out.shape == (21, 21)
    assert torch.nonzero(out).tolist() == [[3 * 2 + 1, 3 * 5 + 1]]


def test_split_holdout_is_deterministic_and_disjoint():
    images = [np.full((4, 4), i, np.uint8) for i in range(91)]
    train_set, held = split_holdout(images, 5)
    assert len(held) == 5 and len(train_set) == 86
    assert [int(h[0, 0]) for h in held] == [9, 27, 45, 63, 81]
    assert split_holdout(images[:2], 5)[1] and len(split_holdout(images[:2], 5)[0]) == 1


# ---------------------------------------------------------------------- methods
def _trainer(cls, *, device="cpu", **training):
    """A CNN method on ``device`` whose next fit trains with the given recipe fields/controls."""
    return cls(device=device).configure_training(**training)


def test_importing_methods_module_does_not_import_torch():
    code = (
        "import sys; import srbench._methods.cnn.methods; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("cls", CNN_METHODS)
def test_method_fit_save_load_upscale(cls, tmp_path):
    images = _images(4, size=66)
    kwargs = {"epochs": 1, "finetune_epochs": 1, "holdout": 1, "batch_size": 8, "progress": False,
              "checkpoint_dir": str(tmp_path / "ckpt"), "device": "cpu"}
    if cls in (cnn.FSRCNNMethod, cnn.ESPCNMethod):
        kwargs.update(patch_size=20, stride=10)
    if cls is cnn.SRCNN955Method:
        kwargs.update(init="seeded")  # "srcnn" needs shipped 9-1-5 weights
    method = _trainer(cls, **kwargs)
    # Only what changes inference is a parameter; training settings live in the recipe.
    assert set(method.key_params()) == {"border"}
    assert method.training.recipe.epochs == 1 and method.training.checkpoint_dir
    method.fit(images, 3).fit(images, 2)
    manifest = method.manifests_[2]
    assert manifest["init"]["from_scale"] == 3
    for key in ("training_data_sha256", "seed", "epochs", "device", "heldout_psnr",
                "hyperparameters", "train_seconds"):
        assert key in manifest
    # where the checkpoints lived is no part of how the weights were made
    assert "checkpoint_dir" not in manifest["params"] and manifest["params"]["device"] == "cpu"
    assert manifest["recipe"]["epochs"] == 1 and manifest["recipe"]["holdout"] == 1
    lr = np.random.default_rng(1).random((17, 23)).astype(np.float32)
    lr_before = lr.copy()
    for scale in (2, 3):
        out = method.upscale(lr, scale)
        assert out.shape == (17 * scale, 23 * scale) and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        np.testing.assert_array_equal(out, method.upscale(lr, scale))
    np.testing.assert_array_equal(lr, lr_before)

    method.save(tmp_path / "w")
    assert json.loads((tmp_path / "w" / "x3.json").read_text())["method"] == cls.name
    loaded = cls().load(tmp_path / "w")
    assert loaded.fitted_scales == {2, 3}
    for scale in (2, 3):
        np.testing.assert_array_equal(loaded.upscale(lr, scale), method.upscale(lr, scale))


def test_warm_start_continues_the_current_weights_and_keeps_their_record(tmp_path):
    images = _images(4, size=66)
    kwargs = {"epochs": 1, "holdout": 1, "batch_size": 8, "patch_size": 20, "stride": 10,
              "progress": False, "device": "cpu", "checkpoint_dir": str(tmp_path / "ckpt")}
    first = _trainer(cnn.ESPCNMethod, **kwargs).fit(images, 3)

    warm = _trainer(cnn.ESPCNMethod, **kwargs, warm_start=True)
    warm.artifacts_, warm.manifests_ = dict(first.artifacts_), dict(first.manifests_)
    warm.fit(images, 3)
    init = warm.manifests_[3]["init"]
    assert init["warm_start"] is True
    assert init["from_artifact"] == first.artifact_hash(3)
    assert init["runs"][0]["init"] == "seeded"
    assert init["runs"][0]["history"] == first.manifests_[3]["history"]
    # One more epoch from the first run's weights: not the seeded start again.
    seeded_again = _trainer(cnn.ESPCNMethod, **kwargs).fit(images, 3)
    assert warm.manifests_[3]["history"][0]["loss"] < first.manifests_[3]["history"][0]["loss"]
    assert not np.array_equal(warm.artifacts_[3]["conv1.weight"],
                              seeded_again.artifacts_[3]["conv1.weight"])
    # A second warm start appends to the chain of runs.
    warm.fit(images, 3)
    assert len(warm.manifests_[3]["init"]["runs"]) == 2
    assert (tmp_path / "ckpt" / "espcn" / "x3-warm.pt").exists()

    # With nothing to continue from, warm_start trains from the seeded initialisation.
    cold = _trainer(cnn.ESPCNMethod, **kwargs, warm_start=True)
    cold.load = lambda *a, **k: (_ for _ in ()).throw(cnn.ArtifactError("none"))
    assert cold.fit(images, 3).manifests_[3]["init"] == "seeded"


def test_espcn_initialisation_starts_tanh_outside_its_linear_range():
    """Pre-activations of order one on a [0, 1] image, so tanh is really non-linear."""
    torch.manual_seed(0)
    net = models.ESPCN(3)
    lr = torch.from_numpy(_images(1, size=60)[0].astype(np.float32) / 255.0)[None, None]
    with torch.no_grad():
        first = net.conv1(lr)
        second = net.conv2(torch.tanh(first))
    assert float(first.std()) > 0.3 and float(second.std()) > 0.3


def test_srcnn_915_weights_embed_exactly_in_955():
    torch.manual_seed(0)
    small = models.SRCNN(kernels=(9, 1, 5), filters=(8, 4))
    tensors = {k: v.numpy() for k, v in small.state_dict().items()}
    wide = models.SRCNN(kernels=(9, 5, 5), filters=(8, 4))
    wide.load_state_dict({k: torch.from_numpy(v)
                          for k, v in cnn.widen_middle_layer(tensors, 5).items()})
    x = torch.rand(1, 1, 30, 26)
    with torch.no_grad():
        np.testing.assert_allclose(wide(x, pad=True).numpy(), small(x, pad=True).numpy(),
                                   atol=1e-6)


def test_fsrcnn_fine_tune_changes_only_the_deconvolution(tmp_path):
    images = _images(4, size=96)
    method = _trainer(cnn.FSRCNNMethod, epochs=1, finetune_epochs=1, holdout=1, batch_size=8,
                      patch_size=20, stride=10, progress=False, checkpoint_dir=str(tmp_path),
                      settings=["finetune_layers=deconv"])
    method.fit(images, 3).fit(images, 4)
    x3, x4 = method.artifacts_[3], method.artifacts_[4]
    for key in x3:
        if key.startswith("deconv."):
            assert x3[key].shape != x4[key].shape or not np.array_equal(x3[key], x4[key])
        else:
            np.testing.assert_array_equal(x3[key], x4[key])
    assert method.manifests_[4]["init"]["trained"] == ["deconv"]


def test_fsrcnn_fine_tune_of_all_layers_starts_from_x3_and_moves_them(tmp_path):
    images = _images(4, size=96)
    # "all" is the recipe's choice, as the shipped x2 and x4 networks were trained.
    method = _trainer(cnn.FSRCNNMethod, epochs=1, finetune_epochs=1, holdout=1, batch_size=8,
                      patch_size=20, stride=10, progress=False, checkpoint_dir=str(tmp_path))
    method.fit(images, 3).fit(images, 2)
    x3, x2 = method.artifacts_[3], method.artifacts_[2]
    assert method.manifests_[2]["init"] == {
        "from_scale": 3, "from_artifact": method.artifact_hash(3), "trained": "all"}
    shared = [key for key in x3 if not key.startswith("deconv.")]
    assert [key for key in shared if not np.array_equal(x3[key], x2[key])] == shared


def test_fine_tune_choices_are_checked_before_training(tmp_path):
    with pytest.raises(MethodError, match="finetune_layers must be one of all, deconv; got 'mapping'"):
        _trainer(cnn.FSRCNNMethod, settings=["finetune_layers=mapping"])
    # Only FSRCNN has a deconvolution to fine-tune on its own.
    espcn = _trainer(cnn.ESPCNMethod, epochs=1, finetune_epochs=1, holdout=1, batch_size=8,
                     patch_size=20, stride=10, progress=False, checkpoint_dir=str(tmp_path),
                     finetune_layers="deconv")
    with pytest.raises(MethodError, match="needs a deconvolution"):
        espcn.fit(_images(4, size=96), 2)


@pytest.mark.parametrize("cls", CNN_METHODS)
def test_weight_average_decay_out_of_range_is_a_method_error(cls, tmp_path):
    with pytest.raises(MethodError, match="ema_decay must be in"):
        _trainer(cls, epochs=1, progress=False, checkpoint_dir=str(tmp_path), ema_decay=1.5)
    with pytest.raises(MethodError, match="has no --stride-x option"):
        _trainer(cls, stride_x=3)


@pytest.mark.parametrize("cls", CNN_METHODS)
def test_shipped_weights_beat_bicubic(cls):
    """Shipped weights load and beat bicubic on a smooth synthetic image (skipped if absent)."""
    if not (cls.weights_dir() / "x3.safetensors").exists():
        pytest.skip(f"no shipped weights for {cls.name}")
    method = cls(device="cpu").load()
    hr = _edges_image(96)
    for scale in sorted(method.fitted_scales):
        hr_s = modcrop(hr, scale)
        lr = degrade(hr_s, scale)
        target = hr_s.astype(np.float64) / 255
        err_net = np.mean((method.upscale(lr, scale)[6:-6, 6:-6] - target[6:-6, 6:-6]) ** 2)
        err_bic = np.mean((imresize(lr, scale)[6:-6, 6:-6] - target[6:-6, 6:-6]) ** 2)
        assert err_net < err_bic


@pytest.mark.parametrize("cls", CNN_METHODS)
def test_shipped_manifests_name_their_training_scales(cls):
    """Each shipped manifest counts T91's originals and lists the scales it trained them at."""
    manifests = sorted(cls.weights_dir().glob("x*.json"))
    if not manifests:
        pytest.skip(f"no shipped weights for {cls.name}")
    for path in manifests:
        manifest = json.loads(path.read_text())
        # Older manifests kept the training settings among the parameters.
        recipe = manifest.get("recipe", manifest["params"])
        factors = recipe.get("scale_augment") or []
        assert manifest["train_images"] + manifest["heldout_images"] == 91, path.name
        assert manifest.get("train_scales", [1.0]) == [1.0, *factors], path.name


def test_time_budget_fixes_the_epoch_count_after_the_probe_epochs():
    x, y = _tiny_srcnn_data()
    cfg = TrainConfig(epochs=1, batch_size=4, seed=3)
    # A budget already spent by the probe epochs: training stops right after them.
    spent = train(_build, x, y, cfg, device="cpu", progress=False, time_budget=1e-6)
    assert spent.epochs_done == spent.epochs_planned == 2
    # A generous budget runs past cfg.epochs and plans its whole cosine schedule.
    probe = spent.history[1]["seconds"]
    longer = train(_build, x, y, cfg, device="cpu", progress=False, time_budget=probe * 12)
    assert longer.epochs_planned > 2
    assert longer.epochs_done == longer.epochs_planned


def test_time_budgeted_fit_records_the_epochs_it_chose(tmp_path):
    images = _images(4, size=66)
    method = _trainer(cnn.ESPCNMethod, epochs=50, holdout=1, batch_size=8, patch_size=20,
                      stride=10, progress=False, checkpoint_dir=str(tmp_path), time_budget=1e-6)
    manifest = method.fit(images, 3).manifests_[3]
    assert "time_budget" not in method.key_params()
    assert manifest["time_budget_s"] == 1e-6
    # The budget, not epochs=50, set the length; the manifest's schedule is the one run.
    assert manifest["epochs"] == manifest["epochs_planned"] == 2
    assert manifest["hyperparameters"]["epochs"] == 2 and manifest["complete"]


def test_downscaled_copies_follow_the_originals_factor_by_factor():
    from srbench.nn.data import downscaled_copies

    images = [np.full((40, 30), 100, np.uint8), np.zeros((20, 50), np.uint8)]
    out = downscaled_copies(images, (0.9, 0.6))
    assert [im.shape for im in out] == [(40, 30), (20, 50), (36, 27), (18, 45), (24, 18),
                                        (12, 30)]
    assert all(im.dtype == np.uint8 for im in out)
    assert (out[2] == 100).all()  # a flat image stays flat: bicubic weights sum to one
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        downscaled_copies(images, (1.2,))


def test_scale_augment_adds_training_subimages_and_parses_from_the_cli(tmp_path):
    method = cnn.FSRCNNMethod().configure_training(settings=["scale_augment=0.9,0.8"])
    assert method.training.recipe.scale_augment == (0.9, 0.8)
    images = _images(4, size=90)
    kwargs = {"epochs": 1, "holdout": 1, "batch_size": 8, "patch_size": 20, "stride": 10,
              "progress": False, "device": "cpu", "checkpoint_dir": str(tmp_path)}
    plain = _trainer(cnn.ESPCNMethod, **kwargs).fit(images, 3).manifests_[3]
    more = _trainer(cnn.ESPCNMethod, **kwargs, scale_augment=(0.8,)).fit(images, 3).manifests_[3]
    assert more["train_subimages"] > plain["train_subimages"]
    assert more["heldout_images"] == plain["heldout_images"] == 1
    # The manifest counts the original images and names the scales each was trained at.
    assert more["train_images"] == plain["train_images"] == 3
    assert (plain["train_scales"], more["train_scales"]) == ([1.0], [1.0, 0.8])


# ---------------------------------------------------------------------- CPU inference formulations
_ARCHS = [("srcnn", {"kernels": (9, 1, 5), "filters": (16, 8)}),
          ("srcnn", {"kernels": (9, 5, 5), "filters": (16, 8)}),
          ("espcn", {"filters": (16, 8)}),
          ("fsrcnn", {"d": 16, "s": 6, "m": 2})]


def _random_net(arch: str, scale: int, kwargs: dict, seed: int = 0):
    torch.manual_seed(seed)
    net = models.build_model(arch, scale, **kwargs).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    return net


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(7, 9), (16, 11)])
@pytest.mark.parametrize("crop", [0, 1, 2])
def test_subpixel_deconv_equals_the_transposed_convolution(scale, size, crop):
    """FSRCNN's deconvolution as stride^2 convolutions + pixel shuffle: the same outputs."""
    torch.manual_seed(scale)
    padding, output_padding, _ = models.deconv_geometry(scale)
    deconv = torch.nn.ConvTranspose2d(5, 1, 9, stride=scale, padding=padding,
                                      output_padding=output_padding)
    x = torch.randn(2, 5, *size)
    with torch.no_grad():
        reference = deconv(x)
        c = crop * scale
        reference = reference[..., c : reference.shape[-2] - c, c : reference.shape[-1] - c]
        ours = models.subpixel_deconv(deconv, x, crop=crop)
        ours_cl = models.subpixel_deconv(deconv, x.contiguous(memory_format=torch.channels_last), crop=crop)
    assert ours.shape == reference.shape
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_cl, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_subpixel_deconv_taps_summed_shifted_are_the_transposed_convolution(scale):
    """FSRCNN's deconvolution as k*k tap images (one GEMM), each added into its phase at its
    offset: every product once, the same outputs."""
    torch.manual_seed(scale)
    padding, output_padding, _ = models.deconv_geometry(scale)
    deconv = torch.nn.ConvTranspose2d(5, 1, 9, stride=scale, padding=padding,
                                      output_padding=output_padding)
    x = torch.randn(5, 11, 13)
    height, width = x.shape[1:]
    with torch.no_grad():
        filters, lo, hi, groups = models.subpixel_deconv_taps(deconv.weight, scale, padding)
        reference = deconv(x[None])[0, 0]
        taps = torch.einsum("tc,chw->thw", filters, x)
        phases = torch.zeros(scale, scale, height, width)
        for oy, noy, ox, nox, ry, nry, rx, nrx, row in groups:
            block = taps[row : row + noy * nox * nry * nrx].view(noy, nox, nry, nrx, height, width)
            for a in range(noy):
                for b in range(nox):
                    # LR position (m, n) reads the input at (m + dy, n + dx), zero outside.
                    dy, dx = lo + oy + a, lo + ox + b
                    y0, y1 = max(0, -dy), min(height, height - dy)
                    x0, x1 = max(0, -dx), min(width, width - dx)
                    phases[ry : ry + nry, rx : rx + nrx, y0:y1, x0:x1] += (
                        block[a, b, :, :, y0 + dy : y1 + dy, x0 + dx : x1 + dx])
        ours = torch.nn.functional.pixel_shuffle(phases.view(1, -1, height, width), scale)[0, 0]
    assert filters.shape == (81, 5) and (lo, hi) == ((-2, 2) if scale == 2 else (-1, 1))
    torch.testing.assert_close(ours + deconv.bias, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("pad", [False, True])
@pytest.mark.parametrize("kwargs", [{}, {"d": 16, "s": 6, "m": 2}])
def test_fsrcnn_banded_cpu_pass_equals_the_torch_layers(scale, pad, kwargs, monkeypatch):
    """FSRCNN's CPU pass (first layers and tail band by band, the deconvolution as shifted
    tap images) computes what the torch layers compute: bands of one row, of a few rows
    (a last band shorter than the rest), one band for the image; odd sizes down to ones
    whose valid output is empty; a batch."""
    net = _random_net("fsrcnn", scale, kwargs, seed=scale)  # PReLU slopes of both signs, > 1
    sizes = [(13, 13), (17, 18), (18, 17), (23, 40), (61, 37)]
    for band in (1, 200, 4096):
        monkeypatch.setattr(models, "_BAND_PIXELS", band)
        for size in sizes:
            x = torch.rand(2 if size == (23, 40) else 1, 1, *size)
            with torch.inference_mode():
                fast = net(x, pad=pad)
                net.fast_inference = False
                reference = net(x, pad=pad)
                net.fast_inference = True
            assert fast.shape == reference.shape, (band, size)
            # Float round-off relative to the outputs' size (random weights: not [0, 1]); each
            # pass is within 3e-6 of that of a float64 pass at these sizes.
            size_of = float(reference.abs().max()) if reference.numel() else 1.0
            torch.testing.assert_close(fast, reference, rtol=0, atol=6e-6 * size_of)


@pytest.mark.parametrize("arch,kwargs", _ARCHS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_cpu_inference_layers_equal_the_torch_layers(arch, kwargs, scale):
    """The reformulated CPU path (GEMM SRCNN, sub-pixel FSRCNN, sigmoid-form ESPCN) computes
    what the reference torch layers compute, padded and valid, any layout and batch."""
    net = _random_net(arch, scale, kwargs)
    x = torch.rand(2, 1, 21, 26)
    for channels_last in (False, True):
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        for pad in (True, False):
            with torch.inference_mode():
                fast = net(x, pad=pad)
                net.fast_inference = False
                reference = net(x, pad=pad)
                net.fast_inference = True
            assert fast.shape == reference.shape
            torch.testing.assert_close(fast, reference, rtol=1e-5, atol=2e-5)
    # Training (autograd on) never takes the reformulated path.
    assert net(x, pad=False).requires_grad


@pytest.mark.parametrize("arch,kwargs", _ARCHS)
@pytest.mark.parametrize("border", ["layers", "symmetric"])
@pytest.mark.parametrize("threads", [1, 2])
def test_run_model_equals_the_reference_pass(arch, kwargs, border, threads):
    """Strips side by side, the valid pass for border="symmetric" and the CPU formulations
    leave run_model's output what one padded reference pass over the image gives."""
    from srbench.nn.infer import prepare_network, run_model

    scale = 3
    net = prepare_network(_random_net(arch, scale, kwargs, seed=1), torch.device("cpu"))
    image = np.random.default_rng(2).random((131, 47)).astype(np.float32)  # 2 strips
    extend = net.reach if border == "symmetric" else 0
    padded = np.pad(image, extend, mode="symmetric") if extend else image
    net.fast_inference = False
    with torch.no_grad():
        reference = net(torch.from_numpy(np.ascontiguousarray(padded))[None, None], pad=True)[0, 0].numpy()
    net.fast_inference = True
    out_scale = 1 if arch == "srcnn" else scale
    cut = extend * out_scale
    if cut:
        reference = reference[cut:-cut, cut:-cut]
    torch.set_num_threads(threads)  # the fixture restores it
    out = run_model(net, image, torch.device("cpu"), border=border)
    assert torch.get_num_threads() == threads  # restored after the strips
    assert out.shape == (131 * out_scale, 47 * out_scale) and out.dtype == np.float32
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=2e-5)
    read_only = image.copy()
    read_only.flags.writeable = False  # a read-only input is copied, not aliased
    np.testing.assert_array_equal(run_model(net, read_only, torch.device("cpu"), border=border), out)


def test_reformulated_networks_keep_their_state_dict_keys():
    """The rearranged weights are derived at call time, never parameters or buffers."""
    for arch in ("srcnn", "espcn", "fsrcnn"):
        net = models.build_model(arch, 3).eval()
        keys = sorted(net.state_dict())
        with torch.inference_mode():
            net(torch.rand(1, 1, 12, 12), pad=True)  # fills the derived-weight cache
        assert sorted(net.state_dict()) == keys
        assert "conv3.weight" in keys if arch != "fsrcnn" else "deconv.weight" in keys


def test_derived_weights_follow_the_parameters():
    net = _random_net("fsrcnn", 3, {"d": 8, "s": 4, "m": 1})
    x = torch.rand(1, 1, 15, 15)
    with torch.no_grad():
        before = net(x, pad=True)
        net.deconv.weight.mul_(2)  # a training step or load_state_dict changes them in place
        after = net(x, pad=True)
        net.fast_inference = False
        reference = net(x, pad=True)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference, rtol=1e-5, atol=1e-5)


def test_shipped_networks_are_unchanged_by_the_cpu_formulations():
    """Every shipped network at every scale: the CPU path against the torch layers."""
    from srbench.nn.infer import run_model

    for cls in CNN_METHODS:
        method = cls(device="cpu")
        if not (method.weights_dir() / "x3.safetensors").exists():
            continue
        for scale in (2, 3, 4):
            method.load(scales=[scale])
            net, dev = method._network(scale)
            image = degrade(modcrop(_edges_image(96), scale), scale)
            image = method._network_input(image, scale)
            fast = run_model(net, image, dev, border=method.border)
            net.fast_inference = False
            try:
                reference = run_model(net, image, dev, border=method.border)
            finally:
                net.fast_inference = True
            np.testing.assert_allclose(fast, reference, rtol=0, atol=2e-5)


@pytest.mark.parametrize("name", ["srcnn", "srcnn_955", "fsrcnn", "espcn"])
def test_mac_count_from_a_small_input_equals_the_full_count(name, monkeypatch):
    # The shipped networks' MACs are counted on an input 8x smaller per side and scaled by
    # the area; that is exact only if every layer's cost is proportional to the area.
    from srbench.nn import efficiency
    from srbench.registry import get_registry
    from srbench.runner import instantiate

    method, _ = instantiate(get_registry().get(name), "cpu")
    monkeypatch.setattr(efficiency, "MAC_INPUT_SIZE", 48)
    scaled = method.efficiency(3)
    monkeypatch.setattr(cnn, "_MAC_AREA_STEP", 1)
    full = method.efficiency(3)
    assert scaled == full
    assert full["macs"] > 0 and full["parameters"] > 0


@pytest.mark.parametrize("name", ["fsrcnn", "espcn"])
@pytest.mark.parametrize("scale", [3, 4])
def test_lr_space_networks_upscale_images_narrower_than_their_reach(name, scale):
    # A valid pass's output also holds the mirrored extension's outputs; the scale must not be
    # read off its width (a 9-pixel-wide LR image at x4 once gave a wrong shape and failed).
    from srbench.registry import get_registry
    from srbench.runner import instantiate

    method, _ = instantiate(get_registry().get(name), "cpu")
    from tests.conftest import natural_image

    lr = natural_image((11, 9), seed=3).astype(np.float32) / 255.0
    out = method.upscale(lr, scale)
    assert out.shape == (11 * scale, 9 * scale)
    assert abs(float(out.mean()) - float(lr.mean())) < 0.05
