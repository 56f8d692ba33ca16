"""End-to-end wall time of q3 (UNet, 24 colours, horses) in jaxcolor vs the same job in PyTorch,
with jaxcolor's phase breakdown (data, palette, compile, train, eval, checkpoint, reporting,
process start-up).

Each side runs as a fresh process with an empty palette cache, so the time covers Python start,
imports, loading the images, k-means, compilation (JAX), training, per-epoch validation and the
final test-set predictions:

- jaxcolor: ``python experiments/q3_unet.py --epochs=N --noresume`` (it also checkpoints every
  epoch, measures gradient norms and writes its tables and figures); side ``jax_bfloat16``: the
  same with ``--precision=bfloat16``;
- PyTorch: this file with ``--worker=torch``: the same data preparation (jaxcolor's loader and
  k-means, so both sides start from identical arrays), then the UNet of
  ``benchmarks/torch_models.py`` in eager mode with Adam (lr 1e-3), batch 100, a fresh shuffle
  every epoch, validation loss/accuracy after every epoch and test predictions at the end; NCHW
  tensors as written, or channels-last (side ``torch_channels_last``, or every PyTorch side
  with ``--torch_channels_last``: PyTorch's fastest CPU layout).

jaxcolor's side starts with a fresh HOME: it builds its native CPU kernels from scratch
(``jaxcolor.cpu.native``) and has no JAX compilation cache (``jaxcolor.app``): the time a first
run on a new machine takes.

    python benchmarks/q3_end_to_end.py --image_dir=../shared/data/cifar10-jpeg [--epochs=25]
        [--sides=jax,jax_bfloat16,torch,torch_channels_last] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def torch_worker(image_dir: str, epochs: int, batch_size: int, seed: int,
                 norm_before_upsample: bool, channels_last: bool) -> None:
    """The PyTorch q3 equivalent (prints one line per epoch and a final JSON line)."""
    import numpy as np
    import torch
    from torch_models import build, image_tensor

    from jaxcolor.config import ExperimentConfig
    from jaxcolor.runner import load_task_data

    start = time.perf_counter()
    data = load_task_data(ExperimentConfig(experiment="q3_torch", model="unet",
                                           image_dir=image_dir))
    torch.manual_seed(seed)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build("unet", norm_before_upsample=norm_before_upsample).to(
        memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")

    def tensors(inputs: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return image_tensor(inputs, channels_last), torch.from_numpy(targets.astype(np.int64))

    train_x, train_y = tensors(data.train_inputs, data.train_targets)
    test_x, test_y = tensors(data.test_inputs, data.test_targets)
    generator = torch.Generator().manual_seed(seed)
    num_batches = len(train_x) // batch_size
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for b in range(num_batches):
            rows = order[b * batch_size:(b + 1) * batch_size]
            optimizer.zero_grad(set_to_none=True)
            images = train_x[rows].contiguous(memory_format=memory_format)
            loss = loss_fn(model(images), train_y[rows]) / train_y[rows].numel()
            loss.backward()
            optimizer.step()
            total += loss.item()
        model.eval()
        val_loss, correct = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(test_x), batch_size):
                logits = model(test_x[i:i + batch_size])
                val_loss += loss_fn(logits, test_y[i:i + batch_size]).item()
                correct += int((logits.argmax(1) == test_y[i:i + batch_size]).sum())
        pixels = test_y.numel()
        print(f"epoch {epoch:3d}/{epochs}  train_loss {total / num_batches:.4f}  val_loss "
              f"{val_loss / pixels:.4f}  val_acc {100 * correct / pixels:5.2f}%", flush=True)
    with torch.no_grad():
        predictions = torch.cat([model(test_x[i:i + batch_size]).argmax(1)
                                 for i in range(0, len(test_x), batch_size)])
    print(json.dumps({"val_accuracy": 100 * correct / pixels,
                      "predicted_pixels": predictions.numel(),
                      "in_process_seconds": time.perf_counter() - start}), flush=True)


def timed(command: list[str], log_path: Path, env: dict[str, str]) -> tuple[float, str]:
    """Run ``command`` to completion; its wall seconds and output (also written to log_path)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log_path.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}); see {log_path}")
    return seconds, result.stdout + result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", required=True)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", default="jax,torch",
                        help="which to run, in this order: jax, jax_bfloat16, torch, "
                        "torch_channels_last")
    parser.add_argument("--torch_norm_before_upsample", action="store_true",
                        help="PyTorch up-blocks in jaxcolor's order (same values, less work)")
    parser.add_argument("--torch_channels_last", action="store_true",
                        help="PyTorch in the channels-last memory format (its fastest on CPU)")
    parser.add_argument("--log_dir", default=None, help="keep both logs here")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "torch":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        torch_worker(args.image_dir, args.epochs, args.batch_size, args.seed,
                     args.torch_norm_before_upsample, args.torch_channels_last)
        return

    unknown = set(args.sides.split(",")) - {"jax", "jax_bfloat16", "torch", "torch_channels_last"}
    if unknown:
        parser.error(f"--sides: unknown {sorted(unknown)}; use jax, jax_bfloat16, torch, "
                     "torch_channels_last")
    image_dir = str(Path(args.image_dir).resolve())
    summary = {"machine": f"{platform.processor() or platform.machine()}, "
                          f"{os.cpu_count()} CPUs", "epochs": args.epochs,
               "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory() as scratch:
        log_dir = Path(args.log_dir or scratch)
        log_dir.mkdir(parents=True, exist_ok=True)
        for side in args.sides.split(","):
            # A fresh HOME and cache folders: no palette, kernel or compilation caches.
            env = {**os.environ, "HOME": tempfile.mkdtemp(dir=scratch),
                   "JAXCOLOR_CACHE_DIR": tempfile.mkdtemp(dir=scratch),
                   "JAXCOLOR_NATIVE_CACHE_DIR": tempfile.mkdtemp(dir=scratch)}
            env.pop("JAX_COMPILATION_CACHE_DIR", None)
            if side.startswith("jax"):
                command = [sys.executable, "experiments/q3_unet.py", f"--image_dir={image_dir}",
                           f"--epochs={args.epochs}", f"--batch_size={args.batch_size}",
                           f"--seed={args.seed}", "--noresume",
                           f"--output_dir={Path(scratch) / f'q3_{side}'}",
                           f"--precision={'bfloat16' if side == 'jax_bfloat16' else 'float32'}"]
            else:
                command = [sys.executable, __file__, "--worker=torch",
                           f"--image_dir={image_dir}", f"--epochs={args.epochs}",
                           f"--batch_size={args.batch_size}", f"--seed={args.seed}"]
                if args.torch_norm_before_upsample:
                    command.append("--torch_norm_before_upsample")
                if args.torch_channels_last or side == "torch_channels_last":
                    command.append("--torch_channels_last")
            seconds, output = timed(command, log_dir / f"q3_end_to_end_{side}.log", env)
            last_epoch = [line for line in output.splitlines() if line.startswith("epoch")][-1]
            summary[side] = {"wall_seconds": seconds, "last_epoch": last_epoch.strip()}
            print(f"{side}: {seconds:.1f} s wall  ({last_epoch.strip()})", flush=True)
            if side.startswith("jax"):  # the job's own breakdown (results.json), and start-up
                results = Path(scratch) / f"q3_{side}" / "results.json"
                phases = json.loads(results.read_text())[-1]["phases"]
                phases["start-up"] = seconds - phases["total"]
                summary[side]["phases"] = phases
                epochs = phases["train"] + phases["eval"]
                print("  " + ", ".join(f"{name} {value:.1f} s" for name, value in phases.items())
                      + f"; wall ÷ epochs (train + eval) {seconds / epochs:.2f}", flush=True)
    for side in ("torch", "torch_channels_last"):
        if "jax" in summary and side in summary:
            ratio = summary[side]["wall_seconds"] / summary["jax"]["wall_seconds"]
            summary[f"{side}_over_jax_wall"] = ratio
            print(f"PyTorch ({side}) wall ÷ jaxcolor wall: {ratio:.2f}×")
    if "jax" in summary and "jax_bfloat16" in summary:
        ratio = summary["jax"]["wall_seconds"] / summary["jax_bfloat16"]["wall_seconds"]
        summary["jax_over_jax_bfloat16_wall"] = ratio
        print(f"jaxcolor float32 wall ÷ jaxcolor bfloat16 wall: {ratio:.2f}×")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
