"""CNN super-resolution methods: SRCNN (9-1-5 and 9-5-5), FSRCNN and ESPCN.

All four share one training loop (:mod:`srbench.nn.train`) and one data pipeline
(:mod:`srbench.nn.data`), trained on T91 with the evaluation protocol's degradation, a few
T91 images held out for validation (never Set5/Set14). Torch is imported only when a
network is trained or run, so importing this module stays cheap.

Deviations from the papers, all about the training schedule (the issue allows any):

* Adam with a per-step cosine learning-rate decay replaces SGD at a fixed rate; the layer
  learning-rate multipliers of the papers are kept (last layer / deconvolution 0.1x).
* Only x3 is trained from scratch. x2 and x4 start from the x3 weights and fine-tune every
  layer (the shipped networks); ``finetune_layers="deconv"`` trains FSRCNN's deconvolution
  alone, as in the paper's transfer experiment. ESPCN reuses the x3 feature layers and
  learns a new output layer (its width depends on the scale).
* Training settings are a per-variant :class:`~.recipes.Recipe` (:data:`~.recipes.RECIPES`),
  not ``__init__`` parameters: ``__init__`` holds only what changes inference (border,
  device, threads), so the result key is the inference settings plus the artifact hash.
* The shipped weights were trained across sessions, first on a 2-core CPU and then, where
  one was lent, on a GPU: each began with its recipe and was continued with
  ``--warm-start`` runs (smaller batches on the CPU for more Adam steps; larger batches and
  ``--time-budget`` on the GPU). Each manifest lists every run under ``init.runs`` with its
  settings, device and history: the manifest, not the recipe, is the record of an artifact.

One deviation at test time: FSRCNN and ESPCN mirror the LR image by their reach instead of
padding every layer (``border="symmetric"``; see :class:`FSRCNNMethod`). SRCNN keeps the
reference per-layer replicate padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from srbench import Method
from srbench.method import ArtifactError, MethodError

from .recipes import Recipe, recipe_for

__all__ = ["ESPCNMethod", "FSRCNNMethod", "SRCNN955Method", "SRCNNMethod"]

#: The scale every network is trained at from scratch; the others start from it.
BASE_SCALE = 3

#: Manifest fields kept for each earlier run when a training run warm-starts.
_RUN_RECORD = ("hyperparameters", "epochs", "train_seconds", "device", "heldout_psnr", "history")


#: MACs are counted on a LR input this many times smaller per side (see ``efficiency``).
_MAC_AREA_STEP = 8


@dataclass(frozen=True)
class TrainingRun:
    """How the next ``fit`` trains: the recipe (possibly overridden) and the run controls.

    None of it is a hyperparameter of the method: it stays out of result keys, and the
    manifest of what it produces records it.
    """

    recipe: Recipe
    resume: bool = False
    warm_start: bool = False
    time_budget: float | None = None
    checkpoint_dir: str | None = None
    progress: bool = True


#: Run controls of ``srbench train`` that the CNNs take (everything else is a recipe field).
_CONTROLS = ("resume", "warm_start", "time_budget", "checkpoint_dir", "progress")


class _CNNMethod(Method):
    """Common behaviour of the torch methods: training, caching of networks, inference.

    Parameters
    ----------
    border : {"layers", "symmetric"}
        Test-time border handling (:func:`srbench.nn.infer.run_model`): "layers" pads every
        convolution's input by repeating its edge, as the reference MATLAB code does;
        "symmetric" mirrors the LR image once by the network's reach.
    device : {"auto", "cpu", "cuda"}
    threads : int, optional
        Torch CPU threads (default: torch's own choice).
    """

    trainable = True
    devices = ("cpu", "cuda")
    runtime_params = frozenset({"device", "threads"})
    inference_params = frozenset({"border"})
    training_controls = frozenset(_CONTROLS)
    # x3 trains from scratch; x2 and x4 fine-tune from it.
    base_scale = 3

    arch: ClassVar[str] = ""
    arch_kwargs: ClassVar[dict[str, Any]] = {}
    #: Parameter-name prefixes trained by a ``finetune_layers="deconv"`` fine-tune (FSRCNN's).
    deconv_layers: ClassVar[tuple[str, ...]] = ()
    #: Parameter-name prefixes *not* copied from x3 when fine-tuning (scale-specific layers).
    finetune_skip: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, border: str = "layers", device: str = "auto", threads: int | None = None) -> None:
        self.border = border
        self.device = device
        self.threads = threads

    # ------------------------------------------------------------------ training plan
    @classmethod
    def default_recipe(cls) -> Recipe:
        """This variant's row of :data:`~.recipes.RECIPES`."""
        return recipe_for(cls.name)

    def configure_training(self, *, settings=(), **options: Any) -> _CNNMethod:
        """Set the recipe overrides (``--set``, ``--epochs``) and run controls of the next fit.

        Keyword ``options`` are recipe fields (``epochs=5``) or run controls (``resume``,
        ``warm_start``, ``time_budget``, ``checkpoint_dir``, ``progress``).
        """
        controls = {k: options.pop(k) for k in list(options) if k in _CONTROLS}
        unknown = sorted(set(options) - set(Recipe.field_names()))
        if unknown:
            raise MethodError(f"{self.name} has no --{unknown[0].replace('_', '-')} option")
        try:
            recipe = self.default_recipe().updated(options, settings)
        except ValueError as err:
            raise MethodError(f"{self.name}: {err}") from None
        self._training = TrainingRun(recipe, **controls)
        return self

    @property
    def training(self) -> TrainingRun:
        """The plan of the next fit (the variant's recipe, unless configured)."""
        plan = self.__dict__.get("_training")
        return plan if plan is not None else TrainingRun(self.default_recipe())

    # ------------------------------------------------------------------ data
    def _pairs(self, images: list[np.ndarray], scale: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _network_input(self, lr: np.ndarray, scale: int) -> np.ndarray:
        """What the network sees for an LR image (LR itself, or its bicubic enlargement)."""
        return lr

    # ------------------------------------------------------------------ training
    def _config(self, scale: int):
        from srbench.nn.train import TrainConfig

        recipe = self.training.recipe
        finetune = scale != BASE_SCALE
        try:
            return TrainConfig(
                epochs=recipe.finetune_epochs if finetune else recipe.epochs,
                batch_size=recipe.batch_size,
                lr=recipe.lr * (recipe.finetune_lr_factor if finetune else 1.0),
                lr_final=recipe.lr_final,
                seed=recipe.seed,
                augment=recipe.augment,
                trainable=self._finetune_trainable() if finetune else None,
                output_lr_factor=recipe.output_lr_factor,
                ema_decay=recipe.ema_decay,
            )
        except ValueError as err:
            raise MethodError(f"{self.name}: {err}") from None

    def _finetune_trainable(self) -> tuple[str, ...] | None:
        """Layers an x2/x4 fine-tune trains (None: all of them)."""
        if self.training.recipe.finetune_layers == "all":
            return None
        if not self.deconv_layers:
            raise MethodError(f"{self.name}: finetune_layers='deconv' needs a deconvolution; this network has none")
        return self.deconv_layers

    def _checkpoint_path(self, scale: int) -> Path:
        run = self.training
        root = Path(run.checkpoint_dir) if run.checkpoint_dir else _checkpoint_root()
        # A warm-started run has its own checkpoint: it must never resume a seeded one.
        suffix = "-warm" if run.warm_start else ""
        return root / self.name / f"x{scale}{suffix}.pt"

    def _base_weights(self, images: list[np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
        """The x3 weights a fine-tune starts from: fitted here, shipped, or trained now."""
        tensors = getattr(self, "artifacts_", {}).get(BASE_SCALE)
        if tensors is None:
            try:
                self.load(scales=[BASE_SCALE])
            except ArtifactError:
                self.fit(images, BASE_SCALE)
            tensors = self.artifacts_[BASE_SCALE]
        return tensors, self.artifact_hash(BASE_SCALE)

    def _warm_state(
        self, scale: int
    ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any] | None]:
        """The current weights for ``scale`` and their record, when warm-starting."""
        if not self.training.warm_start:
            return None, None
        if scale not in getattr(self, "artifacts_", {}):
            try:
                self.load(scales=[scale])
            except ArtifactError:
                return None, None  # nothing to continue from: train as usual
        previous = self.manifests_.get(scale, {})
        earlier = previous.get("init")
        # A chain of warm starts keeps every run: the first run's own init, then each run.
        runs = list(earlier["runs"]) if isinstance(earlier, dict) and "runs" in earlier else []
        record = {key: previous.get(key) for key in _RUN_RECORD}
        if not runs:
            record["init"] = earlier
        runs.append(record)
        info = {"warm_start": True, "from_artifact": self.artifact_hash(scale), "runs": runs}
        return dict(self.artifacts_[scale]), info

    def _initial_state(
        self, images: list[np.ndarray], scale: int
    ) -> tuple[dict[str, np.ndarray] | None, dict[str, Any] | None]:
        """Weights to start from (None: the seeded initialisation) and a note for the manifest."""
        if scale == BASE_SCALE:
            return None, None
        base, base_hash = self._base_weights(images)
        state = {k: v for k, v in base.items() if not k.startswith(self.finetune_skip)}
        trainable = self._finetune_trainable()
        trained = list(trainable) if trainable else "all"
        return state, {"from_scale": BASE_SCALE, "from_artifact": base_hash, "trained": trained}

    def _fit_scale(
        self, images: list[np.ndarray], scale: int
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from . import models
        from srbench.nn.data import downscaled_copies, split_holdout, validation_pairs
        from srbench.nn.train import evaluate_heldout, train

        run = self.training
        recipe = run.recipe
        cfg = self._config(scale)  # first: a bad setting fails before any data is made
        originals, held = split_holdout(images, recipe.holdout)
        # Only the training side is augmented: the held-out score stays comparable.
        train_images = downscaled_copies(originals, recipe.scale_augment)
        x, y = self._pairs(train_images, scale)
        # The network inputs are made once: SRCNN's bicubic enlargement would otherwise cost
        # more than a whole GPU epoch at every validation.
        pairs = [(self._network_input(lr, scale), hr) for lr, hr in validation_pairs(held, scale)]

        init_state, init_info = self._warm_state(scale)
        if init_state is None:
            init_state, init_info = self._initial_state(images, scale)

        def build():
            net = models.build_model(self.arch, scale, **self.arch_kwargs)
            if init_state is not None:
                # Scale-specific layers keep their seeded initialisation.
                own = net.state_dict()
                own.update({k: _tensor(v) for k, v in init_state.items()})
                net.load_state_dict(own)
            return net

        border = self._border()

        def validate(net, dev):
            return evaluate_heldout(net, pairs, scale, None, dev, border=border)

        result = train(
            build,
            x,
            y,
            cfg,
            device=self.device,
            checkpoint=self._checkpoint_path(scale),
            resume=run.resume,
            validate=validate,
            progress=run.progress,
            title=f"{self.name} x{scale}",
            time_budget=run.time_budget,
        )
        cfg = replace(cfg, epochs=result.epochs_planned)
        net = build()
        info = {
            "architecture": self.arch,
            "architecture_params": self.arch_kwargs,
            "recipe": asdict(recipe),
            "run_controls": {"resume": run.resume, "warm_start": run.warm_start},
            "parameters": models.count_parameters(net),
            "hyperparameters": asdict(cfg),
            "seed": cfg.seed,
            "epochs": result.epochs_done,
            "epochs_planned": cfg.epochs,
            "complete": result.epochs_done >= cfg.epochs,
            "train_seconds": result.seconds,
            "time_budget_s": run.time_budget,
            "device": result.device,
            "mixed_precision": result.amp,
            "heldout_psnr": result.heldout_psnr,
            "heldout_border": border,
            "heldout_images": len(held),
            # The originals, and the image scales each was trained at (1.0 plus the copies').
            "train_images": len(originals),
            "train_scales": [1.0, *map(float, recipe.scale_augment)],
            "train_subimages": int(len(x)),
            "init": init_info or "seeded",
            "history": result.history,
        }
        return result.state, info

    # ------------------------------------------------------------------ inference
    def _restore(self, scale: int, tensors: Mapping[str, np.ndarray]) -> None:
        getattr(self, "_nets", {}).pop(scale, None)

    def _network(self, scale: int):
        nets = self.__dict__.setdefault("_nets", {})
        if scale not in nets:
            import torch

            from . import models
            from srbench.nn.infer import prepare_network, resolve_device

            if self.threads:
                torch.set_num_threads(int(self.threads))
            dev = resolve_device(self.device)
            net = models.build_model(self.arch, scale, **self.arch_kwargs)
            net.load_state_dict({k: _tensor(v) for k, v in self.artifacts_[scale].items()})
            nets[scale] = (prepare_network(net, dev), dev)
        return nets[scale]

    def _border(self) -> str:
        from srbench.nn.infer import BORDERS

        if self.border not in BORDERS:
            raise MethodError(
                f"{self.name}: border must be one of {', '.join(BORDERS)}; got {self.border!r}"
            )
        return self.border

    def efficiency(self, scale: int) -> dict[str, int]:
        """Parameters and MACs for a 256x256 LR input (SRCNN's on its 256*scale enlargement).

        The count is the architecture's, as papers give it: the network's own layers
        (convolutions, the strided deconvolution, the pixel shuffle) with same-size padding,
        not the reformulated CPU inference path, whose band overlaps and sub-pixel
        deconvolution are implementation costs. Those layers' MACs are proportional to the
        input's area, so counting on a 32x32 LR input and multiplying by 64 gives the 256x256
        count exactly (tested), in milliseconds instead of seconds of real convolutions. The
        layers are all convolution modules, counted by hooks (the figures of torch's FLOP
        counter, tested, without the second of importing ``torch._dynamo`` it costs a worker).
        """
        from srbench.nn.efficiency import MAC_INPUT_SIZE, count_layer_macs, count_parameters

        net, dev = self._network(scale)
        small = max(1, MAC_INPUT_SIZE // _MAC_AREA_STEP)
        size = len(self._network_input(np.zeros((small, 1), np.float32), scale))

        counted = getattr(net, "architecture_forward", None)

        def forward(x):
            return counted(x.to(dev)) if counted else net(x.to(dev), pad=True)

        fast, net.fast_inference = net.fast_inference, False
        try:
            macs = count_layer_macs(forward, net, 1, size=size) * (MAC_INPUT_SIZE // small) ** 2
        finally:
            net.fast_inference = fast
        return {"parameters": count_parameters(net), "macs": macs}

    def prepare(self, scale: int) -> None:
        """Build the network and run it once, so the timed call has no first-call cost."""
        scale = self.check_scale(scale)
        if scale not in self.fitted_scales:
            return
        from srbench.nn.infer import run_model

        net, dev = self._network(scale)
        probe = self._network_input(np.zeros((24, 24), np.float32), scale)
        run_model(net, probe, dev, border=self._border())

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        from srbench.nn.infer import run_model

        net, dev = self._network(scale)
        out = run_model(net, self._network_input(lr, scale), dev, border=self._border())
        # The reference code saturates with uint8(); clipping here is the same thing and
        # keeps a barely trained network's overshoot from being reported as a range error.
        return np.clip(out, 0.0, 1.0)


def widen_middle_layer(tensors: Mapping[str, np.ndarray], kernel: int) -> dict[str, np.ndarray]:
    """SRCNN 9-1-5 weights as 9-k-5 weights computing the same function.

    The 1x1 middle filters become the centre taps of ``kernel`` x ``kernel`` filters whose
    other taps are zero; with replicate padding the outputs are identical.
    """
    out = {k: np.array(v, dtype=np.float32) for k, v in tensors.items()}
    small = out["conv2.weight"]
    middle = np.zeros(small.shape[:2] + (kernel, kernel), np.float32)
    middle[:, :, kernel // 2, kernel // 2] = small[:, :, 0, 0]
    out["conv2.weight"] = middle
    return out


def _tensor(value: np.ndarray):
    import torch

    return torch.from_numpy(np.array(value, dtype=np.float32))


def _checkpoint_root() -> Path:
    """``checkpoints/`` in a source checkout; the srbench cache folder for a wheel install."""
    methods_root = Path(__file__).resolve().parents[1]
    if methods_root.name == "_methods":  # inside an installed srbench: keep site-packages clean
        from srbench.datasets import cache_dir

        return cache_dir() / "checkpoints"
    return methods_root.parent / "checkpoints"


class _SRCNNBase(_CNNMethod):
    arch = "srcnn"
    citation = (
        "C. Dong, C. C. Loy, K. He, X. Tang, Learning a deep convolutional network for image "
        "super-resolution, ECCV 2014 (9-5-5: Image super-resolution using deep convolutional "
        "networks, TPAMI 2016)"
    )

    def _pairs(self, images, scale):
        from srbench.nn.data import bicubic_pairs

        margin = sum(k // 2 for k in self.arch_kwargs["kernels"])
        recipe = self.training.recipe
        return bicubic_pairs(images, scale, size=recipe.patch_size, stride=recipe.stride, margin=margin)

    def _network_input(self, lr, scale):
        from srbench.protocol import imresize

        return imresize(lr, output_shape=(lr.shape[0] * scale, lr.shape[1] * scale))


class SRCNNMethod(_SRCNNBase):
    """SRCNN 9-1-5 (64/32 filters) on the bicubic-enlarged luminance, trained on T91.

    Trained on 33x33 sub-images at stride 14 with valid convolutions and 21x21 centre labels;
    tested with replicate padding at every layer (the reference ``imfilter`` behaviour).

    Training settings are the ``"srcnn"`` row of :data:`~.recipes.RECIPES`.

    Parameters
    ----------
    border : {"layers", "symmetric"}
        Test-time border handling (:func:`srbench.nn.infer.run_model`): "layers" pads every
        convolution's input by repeating its edge, as the reference ``SRCNN.m`` does (the
        default here); "symmetric" mirrors the image once by the network's reach. For SRCNN
        the two score alike on the held-out images (within 0.003 dB at x3).
    device : {"auto", "cpu", "cuda"}
    threads : int, optional
        Torch CPU threads (default: torch's own choice).
    """

    name = "srcnn"
    label = "SRCNN"
    version = "1"
    arch_kwargs = {"kernels": (9, 1, 5), "filters": (64, 32)}


class SRCNN955Method(_SRCNNBase):
    """SRCNN-Ex 9-5-5 (64/32 filters), trained on T91 like :class:`SRCNNMethod`.

    The labels are the 17x17 centres of the 33x33 sub-images. Its recipe's ``init="srcnn"``
    starts every scale from the shipped 9-1-5 weights (see :meth:`_initial_state`);
    ``init="seeded"`` trains x3 from scratch and fine-tunes x2/x4 from it. Parameters as
    for :class:`SRCNNMethod`.
    """

    name = "srcnn_955"
    label = "SRCNN 9-5-5"
    version = "1"
    arch_kwargs = {"kernels": (9, 5, 5), "filters": (64, 32)}

    def _initial_state(self, images, scale):
        """Start from the shipped 9-1-5 SRCNN of the same scale when ``init="srcnn"``.

        The 9-1-5 weights embed exactly in 9-5-5: the 1x1 middle filters become the centre
        taps of 5x5 filters whose other taps are zero, so training starts from the 9-1-5
        network's function and only has to learn what the wider middle layer adds. This
        saves most of the (7x more expensive) 9-5-5 training on a CPU.
        """
        if self.training.recipe.init != "srcnn":
            return super()._initial_state(images, scale)
        small = SRCNNMethod(device="cpu")
        try:
            small.load(scales=[scale])
        except ArtifactError:
            small.fit(images, scale)
        tensors = widen_middle_layer(small.artifacts_[scale], 5)
        return tensors, {"from": "srcnn", "from_scale": scale,
                         "from_artifact": small.artifact_hash(scale), "trained": "all"}


class _LRSpaceBase(_CNNMethod):
    """Networks that work on the LR image itself and upsample inside.

    They mirror the LR image at test time by default (``border="symmetric"``; see
    :class:`FSRCNNMethod` for why).
    """

    def __init__(self, *, border: str = "symmetric", device: str = "auto", threads: int | None = None) -> None:
        self.border = border
        self.device = device
        self.threads = threads

    def _pairs(self, images, scale):
        from . import models
        from srbench.nn.data import lr_pairs

        probe = models.build_model(self.arch, scale, **self.arch_kwargs)
        recipe = self.training.recipe
        return lr_pairs(
            images,
            scale,
            size=recipe.patch_size,
            stride=recipe.stride,
            margin=probe.margin,
            hr_crop=probe.hr_crop,
        )


class FSRCNNMethod(_LRSpaceBase):
    """FSRCNN (56, 12, 4): PReLU, deconvolution to HR; x3 from scratch, x2/x4 from x3.

    Trained on LR sub-images with valid convolutions (labels are the HR pixels the valid
    output covers). The deconvolution centres LR pixel ``i`` on HR pixel ``3i + 1`` at x3,
    where MATLAB's bicubic puts it, so no extra shave is used.

    Tested with ``border="symmetric"``: the LR image is mirrored by the network's reach (8
    LR pixels) and the extension cut off the output, so the border outputs are computed as
    in training. The reference ``FSRCNN.m`` pads every layer instead (``border="layers"``),
    but its network was trained with zero padding in every layer and so learned what padded
    feature maps look like; ours, trained with valid convolutions, never saw them, and on
    the held-out T91 images per-layer padding cost it about 0.1 dB at x3. The choice was
    made on those held-out images, not on Set5/Set14.

    The shipped x2 and x4 networks fine-tuned every layer, starting from the x3 network
    (recipe ``finetune_layers="all"``); ``finetune_layers="deconv"`` trains the
    deconvolution alone, as in the paper's transfer experiment. The recipe's
    ``output_lr_factor`` is 1: with Adam the paper's 0.1 for the deconvolution left the
    network far behind SRCNN.

    Parameters
    ----------
    border : {"symmetric", "layers"}
    device : {"auto", "cpu", "cuda"}
    threads : int, optional
    """

    name = "fsrcnn"
    label = "FSRCNN"
    version = "1"
    arch = "fsrcnn"
    arch_kwargs = {"d": 56, "s": 12, "m": 4}
    deconv_layers = ("deconv",)
    citation = (
        "C. Dong, C. C. Loy, X. Tang, Accelerating the super-resolution convolutional neural "
        "network, ECCV 2016"
    )


class ESPCNMethod(_LRSpaceBase):
    """ESPCN 5-3-3 (64/32 filters), tanh, pixel shuffle; trained with the bicubic protocol.

    Unlike the paper (Gaussian-blur LR), the LR images are the protocol's MATLAB bicubic
    downscales, so the numbers sit on the same protocol as every other method here. Tested
    with ``border="symmetric"`` for the reason given for FSRCNN (on the held-out images,
    about 0.05 dB better than per-layer padding at x3).

    Parameters
    ----------
    As :class:`FSRCNNMethod`.
    """

    name = "espcn"
    label = "ESPCN"
    version = "1"
    arch = "espcn"
    arch_kwargs = {"kernels": (5, 3, 3), "filters": (64, 32)}
    finetune_skip = ("conv3.",)
    citation = (
        "W. Shi et al., Real-time single image and video super-resolution using an efficient "
        "sub-pixel convolutional neural network, CVPR 2016"
    )

