"""Train TinySR on T91 with srbench's training loop, for the RGB protocol.

    python examples/tiny_rgb/train.py --scale 4 --time-budget 600

Pairs are made as the ``matlab-rgb`` protocol makes its inputs: HR crops of T91 (colour),
LR by MATLAB bicubic per channel rounded to uint8. Five T91 images are held out and scored
after every epoch (RGB -> Y PSNR, shave = scale); no test set is looked at. Writes
``tiny_x{scale}.safetensors`` and a JSON manifest beside this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from srbench.imageio import read_image
from srbench.method import file_hash, training_data_hash
from srbench.nn.data import split_holdout
from srbench.nn.train import TrainConfig, train
from srbench.protocol import imresize, modcrop, rgb2ycbcr
from srbench.training import find_training_dir

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from net import TinySR  # noqa: E402


def colour_images(folder: Path) -> list[np.ndarray]:
    images = []
    for path in sorted(folder.glob("*.png")) + sorted(folder.glob("*.bmp")):
        image = read_image(path)
        images.append(image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2))
    return images


def lr_of(hr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(hr, 1 / scale)  # uint8 in, uint8 out: MATLAB's rounding


def pairs(images: list[np.ndarray], scale: int, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for image in images:
        hr = modcrop(image, scale)
        lr = lr_of(hr, scale)
        for top in range(0, lr.shape[0] - size + 1, stride):
            for left in range(0, lr.shape[1] - size + 1, stride):
                xs.append(lr[top : top + size, left : left + size])
                ys.append(hr[top * scale : (top + size) * scale, left * scale : (left + size) * scale])
    x = np.stack(xs).transpose(0, 3, 1, 2).astype(np.float32) / 255
    y = np.stack(ys).transpose(0, 3, 1, 2).astype(np.float32) / 255
    return x, y


def heldout_psnr(model: torch.nn.Module, held: list[np.ndarray], scale: int, device) -> float:
    values = []
    for image in held:
        hr = modcrop(image, scale)
        x = torch.from_numpy(lr_of(hr, scale).astype(np.float32) / 255).permute(2, 0, 1)[None].to(device)
        with torch.no_grad():
            sr = model(x)[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()
        sr_y = rgb2ycbcr(np.round(sr * 255).astype(np.uint8).astype(np.float64) / 255)[..., 0]
        hr_y = rgb2ycbcr(hr.astype(np.float64) / 255)[..., 0]
        diff = (sr_y - hr_y)[scale:-scale, scale:-scale] * 255
        values.append(10 * np.log10(255**2 / np.mean(diff**2)))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--time-budget", type=float, default=None)
    parser.add_argument("--train-dir", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    images = colour_images(find_training_dir(args.train_dir))
    train_set, held = split_holdout(images, 5)
    x, y = pairs(train_set, args.scale, size=24, stride=12)
    cfg = TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, lr_final=1e-5, augment=True, output_lr_factor=1.0)
    result = train(
        lambda: TinySR(args.scale), x, y, cfg, device=args.device, title=f"TinySR x{args.scale}",
        validate=lambda model, device: heldout_psnr(model, held, args.scale, device), time_budget=args.time_budget,
    )  # fmt: skip
    from dataclasses import asdict, replace

    from safetensors.numpy import save_file

    cfg = replace(cfg, epochs=result.epochs_planned)  # a time budget fixes the epoch count

    out = HERE / f"tiny_x{args.scale}.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in result.state.items()}, str(out))
    manifest = {
        "network": "TinySR", "model_args": {"scale": args.scale}, "scale": args.scale,
        "training_data_sha256": training_data_hash(images), "train_images": len(train_set),
        "heldout_images": len(held), "pairs": "matlab-rgb LR (per-channel bicubic, uint8), 24 px LR patches, stride 12",
        "hyperparameters": {k: v for k, v in asdict(cfg).items() if k != "trainable"},
        "time_budget_s": args.time_budget,
        "epochs": result.epochs_done, "train_seconds": round(result.seconds, 1), "device": result.device,
        "heldout_psnr": result.heldout_psnr, "history": result.history, "artifact_sha256": file_hash(out),
        "made_by": "examples/tiny_rgb/train.py",
    }  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out} (held-out PSNR {result.heldout_psnr:.3f} dB after {result.epochs_done} epochs)")


if __name__ == "__main__":
    main()
