"""How each CNN variant is trained: one recipe per variant, like timm's model configs.

A recipe is what ``srbench train NAME`` does when started from nothing; ``--set KEY=VALUE``
overrides a field for that run. None of it reaches a result's key: a trained network is
identified by its artifact hash, and how it was trained is recorded in its manifest (every
run of a warm-started chain under ``init.runs``). The shipped networks began with these
recipes and were then continued with ``--warm-start`` runs whose settings their manifests
list: a recipe is where a network starts, the manifest is what it went through.

Only x3 is trained from scratch; x2 and x4 start from the x3 network (``finetune_*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from srbench.method import MethodError

__all__ = ["FINETUNE_LAYERS", "INITS", "RECIPES", "Recipe"]

#: What an x2/x4 fine-tune from the x3 network trains: every layer, or (FSRCNN's transfer
#: experiment) the deconvolution alone.
FINETUNE_LAYERS = ("all", "deconv")
#: Where x3 training starts: a seeded initialisation, or (SRCNN 9-5-5) the shipped SRCNN
#: 9-1-5 network of the same scale with its middle layer widened.
INITS = ("seeded", "srcnn")


@dataclass(frozen=True)
class Recipe:
    """Training settings of one CNN variant.

    Attributes
    ----------
    epochs : int
        Epochs at x3 (trained from scratch, or from ``init``).
    finetune_epochs : int
        Epochs at x2 and x4 (fine-tuned from x3).
    batch_size : int
    lr, lr_final : float
        Adam learning rate at the start and at the end of the per-step cosine decay.
    finetune_lr_factor : float
        ``lr`` is multiplied by this for the x2/x4 fine-tunes.
    output_lr_factor : float
        Learning-rate factor of the output layer (the papers' 0.1 with SGD; with Adam, 0.1
        makes a network that must learn its whole output, FSRCNN or ESPCN, learn very slowly).
    ema_decay : float
        Per-step decay of an exponential moving average of the weights, which is then what
        is validated and saved (0: off).
    patch_size, stride : int
        Training sub-image size and stride (HR pixels for SRCNN, LR pixels for the networks
        that work on the LR image).
    augment : bool
        Random flips and 90-degree rotations of each batch.
    scale_augment : tuple of float
        Also train on each training image downscaled by these factors (FSRCNN's
        augmentation is ``(0.9, 0.8, 0.7, 0.6)``); empty for none.
    finetune_layers : {"all", "deconv"}
        What the x2/x4 fine-tunes train.
    init : {"seeded", "srcnn"}
        Where x3 training starts (``"srcnn"``: SRCNN 9-5-5 from the 9-1-5 network).
    holdout : int
        T91 images held out for validation (never a test set).
    seed : int
    """

    epochs: int
    finetune_epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    lr_final: float = 1e-5
    finetune_lr_factor: float = 0.5
    output_lr_factor: float = 0.1
    ema_decay: float = 0.0
    patch_size: int = 33
    stride: int = 14
    augment: bool = False
    scale_augment: tuple[float, ...] = ()
    finetune_layers: str = "all"
    init: str = "seeded"
    holdout: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        # Checked when a recipe is made, so a bad --set fails before any data is prepared.
        if self.finetune_layers not in FINETUNE_LAYERS:
            raise ValueError(
                f"finetune_layers must be one of {', '.join(FINETUNE_LAYERS)}; got {self.finetune_layers!r}"
            )
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}; got {self.init!r}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1); got {self.ema_decay!r}")
        object.__setattr__(self, "scale_augment", tuple(float(f) for f in self.scale_augment))

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def updated(self, values: Mapping[str, Any] | None = None, settings: Sequence[str] = ()) -> Recipe:
        """This recipe with fields replaced by ``values`` and by ``KEY=VALUE`` ``settings``.

        A setting's text is converted to the type of the field it replaces.
        """
        from srbench.method import convert_setting

        changes = dict(values or {})
        current = asdict(self)
        for item in settings:
            key, sep, text = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                raise ValueError(f"expected KEY=VALUE, got {item!r}")
            if key not in current:
                raise ValueError(f"unknown training setting {key!r}; known: {sorted(current)}")
            changes[key] = convert_setting(key, text.strip(), current[key])
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise ValueError(f"unknown training setting {unknown[0]!r}; known: {sorted(current)}")
        return replace(self, **changes)


#: The variants' recipes. SRCNN follows the paper's sub-images (33 px, stride 14);
#: FSRCNN's and ESPCN's sub-images are in LR pixels, with flips and rotations.
RECIPES: dict[str, Recipe] = {
    "srcnn": Recipe(epochs=110, finetune_epochs=70, finetune_lr_factor=0.3),
    # Starts from SRCNN 9-1-5, so a short, gentle schedule is enough to learn what the wider
    # middle layer adds (and 9-5-5 costs about 7x as much per epoch).
    "srcnn_955": Recipe(
        epochs=24, finetune_epochs=20, lr=1e-4, lr_final=1e-6, finetune_lr_factor=1.0, init="srcnn"
    ),
    "fsrcnn": Recipe(
        epochs=150, finetune_epochs=40, batch_size=64, output_lr_factor=1.0, patch_size=30,
        stride=12, augment=True,
    ),  # fmt: skip
    "espcn": Recipe(
        epochs=150, finetune_epochs=60, batch_size=64, output_lr_factor=1.0, patch_size=25,
        stride=12, augment=True,
    ),  # fmt: skip
}


def recipe_for(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise MethodError(f"no training recipe for {name!r}; known: {', '.join(sorted(RECIPES))}") from None
