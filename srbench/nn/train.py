"""One training loop for every CNN method (imports torch).

CUDA with mixed precision when a GPU is present, CPU otherwise; seeded; a checkpoint after
every epoch so that a killed run resumes where it stopped; a progress bar with the loss and
the held-out PSNR (one log line per epoch when the output is not a terminal).

Reproducibility: the model is initialised from ``seed`` and each epoch's shuffle comes from
its own generator seeded with ``(seed, epoch)``, so a resumed run visits the same batches as
an uninterrupted one and no random state has to be saved.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srbench.nn.infer import resolve_device, run_model
from srbench.metrics import psnr
from srbench.protocol import to_uint8

__all__ = ["TrainConfig", "TrainResult", "evaluate_heldout", "train"]

#: Epochs timed before a time-budgeted run fixes its epoch count (the first one also pays
#: for cuDNN's algorithm search and the allocator's warm-up, so it is not representative).
_BUDGET_PROBE_EPOCHS = 2


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (all stored in the manifest).

    Attributes
    ----------
    epochs : int
        Total epochs; the cosine learning-rate schedule spans them.
    batch_size : int
    lr : float
        Adam learning rate at the start (times each layer's multiplier).
    lr_final : float
        Learning rate at the end of the cosine schedule.
    seed : int
    augment : bool
        Random flips and 90-degree rotations of each batch (valid for the bicubic
        degradation, which is symmetric).
    trainable : sequence of str, optional
        Only parameters whose names start with one of these prefixes are trained (FSRCNN's
        deconvolution-only fine-tuning); all when None.
    output_lr_factor : float
        Learning-rate factor of the network's output layer (its ``output_params``). The
        papers use 0.1 with SGD; with Adam, whose steps do not scale with the gradient, 0.1
        makes a network that must learn its whole output (ESPCN, FSRCNN) learn very slowly.
    ema_decay : float
        When above 0, an exponential moving average of the weights is kept (decay per step,
        warmed up as ``min(ema_decay, (1 + t) / (10 + t))`` at step ``t`` of the run); it is
        what is validated, checkpointed alongside the live weights and returned. Averaging
        smooths out the step-to-step noise of Adam at a high learning rate; 0 turns it off.
    """

    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    lr_final: float = 1e-5
    seed: int = 0
    augment: bool = False
    trainable: Sequence[str] | None = None
    output_lr_factor: float = 0.1
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        # Checked here, once, so a bad value fails before any training data is made.
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1); got {self.ema_decay!r}")


@dataclass
class TrainResult:
    """What a training run produced."""

    state: dict[str, np.ndarray]
    epochs_done: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    amp: bool = False
    epochs_planned: int = 0

    @property
    def heldout_psnr(self) -> float | None:
        return self.history[-1].get("heldout_psnr") if self.history else None


def evaluate_heldout(
    model: nn.Module,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    scale: int,
    prepare: Callable[[np.ndarray, int], np.ndarray] | None,
    device: torch.device,
    *,
    border: str = "layers",
) -> float | None:
    """Mean PSNR on held-out (LR, HR uint8) pairs with the test-time model and protocol.

    ``prepare`` makes the network input from an LR image; None when the pairs already hold
    network inputs (made once, outside the training loop). ``border`` is the test-time
    border handling of :func:`srbench.nn.infer.run_model`.
    """
    if not pairs:
        return None
    values = []
    was_training = model.training
    model.eval()
    for lr, hr in pairs:
        sr = run_model(model, lr if prepare is None else prepare(lr, scale), device, border=border)
        values.append(psnr(to_uint8(np.clip(sr, 0, 1)), hr, border=scale))
    model.train(was_training)
    return float(np.mean(values))


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Cosine decay from ``lr`` to ``lr_final`` over all steps (per step, so resumable)."""
    t = min(1.0, step / max(1, total))
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1.0 + math.cos(math.pi * t))


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # atomic: a kill mid-write leaves the previous checkpoint intact


class _Reporter:
    """Rich progress bar on a terminal, one plain line per epoch otherwise (nohup logs)."""

    def __init__(self, enabled: bool, title: str, epochs: int | None, start: int) -> None:
        self.progress = None
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
            from rich.progress import TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("held-out {task.fields[psnr]} dB"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                title, total=epochs, completed=start, loss="-", psnr="-"
            )
        self.title = title
        self.epochs = epochs

    def update(self, epoch: int, loss: float, value: float | None, seconds: float) -> None:
        if not self.enabled:
            return
        shown = "-" if value is None else f"{value:.3f}"
        if self.progress is not None:
            self.progress.update(self.task, completed=epoch, loss=f"{loss:.3e}", psnr=shown)
        else:
            print(
                f"{self.title} epoch {epoch}/{self.epochs or '?'} loss {loss:.4e} "
                f"held-out {shown} dB ({seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    def set_total(self, epochs: int | None) -> None:
        self.epochs = epochs
        if self.progress is not None:
            self.progress.update(self.task, total=epochs)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def train(
    build: Callable[[], nn.Module],
    inputs: np.ndarray,
    labels: np.ndarray,
    cfg: TrainConfig,
    *,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    resume: bool = False,
    init_state: dict[str, np.ndarray] | None = None,
    validate: Callable[[nn.Module, torch.device], float | None] | None = None,
    progress: bool = True,
    title: str = "training",
    stop_after: int | None = None,
    time_budget: float | None = None,
) -> TrainResult:
    """Train a network on (input, label) sub-images with Adam and a cosine schedule.

    Parameters
    ----------
    build : callable
        Returns a fresh network (called after seeding, so its init is reproducible). The
        network's ``forward(x, pad=False)`` maps a batch of inputs to label-sized outputs;
        an optional ``output_params`` attribute names the output layer's parameters.
    inputs, labels : ndarray, float32, shapes (N, 1, h, w) and (N, 1, H, W)
    cfg : TrainConfig
    device : {"auto", "cpu", "cuda", ...}
        "auto" picks CUDA when available; CUDA trains with float16 autocast.
    checkpoint : path, optional
        File written after every epoch (model, optimiser, epoch, history).
    resume : bool
        Continue from ``checkpoint`` if it exists; otherwise start over.
    init_state : dict, optional
        Initial weights (fine-tuning), loaded after the seeded build.
    validate : callable, optional
        ``validate(model, device)`` -> held-out PSNR, run after every epoch.
    progress : bool
        Show a progress bar (or per-epoch log lines when not on a terminal).
    stop_after : int, optional
        Stop after this many epochs of *this call* (tests use it to simulate a kill).
    time_budget : float, optional
        Seconds this call may train for, instead of ``cfg.epochs``. The first
        ``_BUDGET_PROBE_EPOCHS`` epochs run at the schedule's initial rate and are timed;
        then the epoch count is fixed to what fits the rest of the budget, so the cosine
        schedule still runs to its end; it is shortened if epochs later slow down. The
        count is returned in ``epochs_planned`` (``--epochs`` with it reproduces the
        schedule, up to the probe epochs' rate).

    Returns
    -------
    TrainResult
    """
    dev = resolve_device(device)
    amp = dev.type == "cuda"
    if amp:
        # Fixed input sizes: let cuDNN pick the fastest convolution algorithms once.
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    model = build()
    if init_state is not None:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in init_state.items()})
    # channels_last makes oneDNN's convolutions about 1.5x faster on CPU (and suits
    # tensor cores on CUDA); the weights are exported contiguous at the end.
    model.to(dev, memory_format=torch.channels_last).train()

    multipliers = {name: cfg.output_lr_factor for name in getattr(model, "output_params", ())}
    groups: dict[float, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if cfg.trainable is not None and not any(name.startswith(p) for p in cfg.trainable):
            param.requires_grad_(False)
            continue
        groups.setdefault(multipliers.get(name, 1.0), []).append(param)
    # The fused CUDA kernel takes the gradient scaler's inf check without a host sync, so
    # the launch-bound small networks keep the GPU queue full.
    optimizer = torch.optim.Adam(
        [{"params": ps, "mult": m} for m, ps in sorted(groups.items())],
        lr=cfg.lr,
        fused=dev.type == "cuda",
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    averaged = copy.deepcopy(model).requires_grad_(False) if cfg.ema_decay > 0 else None

    x_all = torch.from_numpy(np.ascontiguousarray(inputs)).to(dev)
    y_all = torch.from_numpy(np.ascontiguousarray(labels)).to(dev)
    n = len(x_all)
    if n == 0:
        raise ValueError("no training sub-images: images too small for the patch size")
    batch = min(cfg.batch_size, n)
    steps_per_epoch = n // batch  # drop the ragged last batch: every step has equal weight
    planned = cfg.epochs
    if time_budget is not None:
        planned = 1_000_000  # until the probe epochs fix it; the rate stays at cfg.lr
    total_steps = steps_per_epoch * planned

    start_epoch, history, elapsed = 0, [], 0.0
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    fingerprint = {"config": asdict(cfg), "n": n, "input": list(inputs.shape[1:]),
                   "label": list(labels.shape[1:])}
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=dev, weights_only=True)
        # Only the epoch count may change on resume (to extend a run); anything else
        # means the checkpoint belongs to another run.
        if _without_epochs(state.get("fingerprint", {})) != _without_epochs(fingerprint):
            raise ValueError(
                f"checkpoint {ckpt_path} was made with other settings; delete it or "
                "train without --resume"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        if averaged is not None:
            averaged.load_state_dict(state["ema"])
        start_epoch = int(state["epoch"])
        history = list(state["history"])
        elapsed = float(state["elapsed"])

    # A budgeted run's length is unknown until its probe epochs are timed.
    reporter = _Reporter(progress, title, planned if time_budget is None else None, start_epoch)
    done_here, call_start = 0, time.perf_counter()
    try:
        epoch = start_epoch
        while epoch < planned:
            if stop_after is not None and done_here >= stop_after:
                break
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=gen).to(dev)
            flips = torch.randint(0, 8, (steps_per_epoch,), generator=gen).tolist()
            # Summed on the device: a per-step .item() would stall the GPU queue every step.
            total = torch.zeros((), device=dev)
            for i in range(steps_per_epoch):
                step = epoch * steps_per_epoch + i
                lr = _lr_at(cfg, step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["mult"]
                idx = order[i * batch : (i + 1) * batch]
                xb, yb = x_all[idx], y_all[idx]
                if cfg.augment:
                    xb, yb = _dihedral(xb, flips[i]), _dihedral(yb, flips[i])
                with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                    out = model(xb)
                loss = torch.mean((out.float() - yb) ** 2)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if averaged is not None:
                    _update_average(averaged, model, cfg.ema_decay, step)
                total += loss.detach()
            mean_loss = float(total) / steps_per_epoch
            shipped = averaged if averaged is not None else model
            held = validate(shipped, dev) if validate is not None else None
            seconds = time.perf_counter() - t0
            elapsed += seconds
            row = {"epoch": epoch + 1, "loss": mean_loss, "seconds": round(seconds, 3)}
            if held is not None:
                row["heldout_psnr"] = round(held, 4)
            history.append(row)
            done_here += 1
            epoch += 1
            if time_budget is not None and done_here >= _BUDGET_PROBE_EPOCHS:
                left = time_budget - (time.perf_counter() - call_start)
                probing = done_here == _BUDGET_PROBE_EPOCHS
                recent = seconds if probing else 0.8 * recent + 0.2 * seconds
                fits = epoch + max(0, int(left / recent))
                # Fixed after the probe; later only shortened (when epochs slow down, e.g.
                # other jobs share the GPU), which moves the cosine schedule on and keeps
                # the rate falling, so the run still ends at the budget with a decayed rate.
                if probing or fits < planned - max(1, planned // 50):
                    planned = fits
                    total_steps = steps_per_epoch * planned
                    reporter.set_total(planned)
            if ckpt_path is not None:
                _save_checkpoint(
                    ckpt_path,
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict(),
                        **({"ema": averaged.state_dict()} if averaged is not None else {}),
                        "epoch": epoch,
                        "history": history,
                        "elapsed": elapsed,
                        "fingerprint": _plain(fingerprint),
                    },
                )
            reporter.update(epoch, mean_loss, held, seconds)
    finally:
        reporter.close()
    final = averaged if averaged is not None else model
    weights = {
        k: v.detach().float().cpu().contiguous().numpy() for k, v in final.state_dict().items()
    }
    return TrainResult(
        state=weights,
        epochs_done=len(history),
        history=history,
        seconds=round(elapsed, 2),
        device=str(dev),
        amp=amp,
        epochs_planned=planned,
    )


@torch.no_grad()
def _update_average(averaged: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """One EMA step; the warm-up lets the average follow closely while it has few samples."""
    weight = 1.0 - min(decay, (1.0 + step) / (10.0 + step))
    for mine, live in zip(averaged.parameters(), model.parameters()):
        mine.lerp_(live, weight)


def _without_epochs(fingerprint: dict[str, Any]) -> Any:
    plain = _plain(fingerprint)
    config = plain.setdefault("config", {})
    # Settings added to TrainConfig later are absent from older checkpoints: those runs
    # used the default, so fill it in rather than refuse to resume them.
    for item in fields(TrainConfig):
        if item.name not in config and item.default is not MISSING:
            config[item.name] = _plain(item.default)
    config.pop("epochs", None)
    return plain


def _plain(value: Any) -> Any:
    """JSON-like plain data (tuples to lists) so fingerprints compare after a round trip."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
