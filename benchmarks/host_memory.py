"""Train steps with glibc's default malloc vs ``jaxcolor.cpu.host_memory.retain_freed_memory()``.

XLA:CPU allocates each step's buffers afresh; with glibc's defaults large blocks are mmapped
and unmapped every step, and the kernel zero-fills their pages again on first touch. Each
setting runs in fresh worker processes (the setting is process-wide and cannot be undone),
alternating, ``--rounds`` times; each worker times jaxcolor's CNN and UNet train steps (batch
100, real horse images with ``--image_dir``, else random) and, with torch installed, the
PyTorch eager channels-last steps of ``benchmarks/torch_models.py`` under the same setting.
Reports images/s (median of the workers' medians) and minor page faults per step.

    python benchmarks/host_memory.py [--image_dir=../shared/data/cifar10-jpeg] [--rounds=2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = ("glibc defaults", "retained")


def worker(setting: str, image_dir: str | None, steps: int, repeats: int) -> dict[str, list]:
    """{model: [images/s, minor faults per step]} in this process under ``setting``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from jaxcolor.cpu import host_memory

    if setting == "retained":
        assert host_memory.retain_freed_memory()
    import jax
    import jax.numpy as jnp
    import optax
    from train_throughput import benchmark_data

    from jaxcolor.models import ModelSpec, build_model
    from jaxcolor.objectives import CLASSIFICATION
    from jaxcolor.training import parallel
    from jaxcolor.training import state as train_state
    from jaxcolor.training import steps as train

    batch = 100
    count = batch * steps
    data = benchmark_data(count, image_dir)
    results = {}

    def measure(run_steps) -> list[float]:
        run_steps()
        rates, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(repeats):
            start = time.perf_counter()
            run_steps()
            rates.append(count / (time.perf_counter() - start))
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        return [statistics.median(rates), faults / (repeats * steps)]

    inputs, targets = (jnp.asarray(a[None, :count]) for a in data)
    order = jnp.arange(count).reshape(1, steps, batch)
    indices = [jnp.asarray(i, jnp.int32) for i in range(steps)]
    for name in ("cnn", "unet"):
        model = build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=24))
        tx, mesh = optax.adam(1e-3), parallel.data_mesh()
        holder = {"state": train_state.create_train_state(model, tx, inputs[0, :1],
                                                          jax.random.key(0))}
        step = train.make_train_step(model, tx, CLASSIFICATION, mesh).lower(
            holder["state"], inputs, targets, order, 0).compile()

        def run_steps(step=step, holder=holder) -> None:
            for i in indices:
                holder["state"], loss = step(holder["state"], inputs, targets, order, i)
            loss.block_until_ready()

        results[f"jaxcolor {name}"] = measure(run_steps)
    try:
        import torch
        from torch_models import build, image_tensor
    except ImportError:
        return results
    for name in ("cnn", "unet"):
        torch.manual_seed(0)
        model = build(name).to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        images = [image_tensor(data[0][i * batch:(i + 1) * batch], True) for i in range(steps)]
        labels = torch.from_numpy(data[1][:count].astype("int64")).reshape(steps, batch, 32, 32)

        def torch_steps(model=model, optimizer=optimizer, images=images, labels=labels,
                        loss_fn=loss_fn) -> None:
            for x, y in zip(images, labels, strict=True):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()

        results[f"PyTorch channels-last {name}"] = measure(torch_steps)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", default=None)
    parser.add_argument("--rounds", type=int, default=2, help="workers per setting")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.image_dir, args.steps, args.repeats)))
        return
    runs: dict[str, list[dict]] = {setting: [] for setting in SETTINGS}
    for round_index in range(args.rounds):
        for setting in SETTINGS:
            command = [sys.executable, __file__, f"--worker={setting}", f"--steps={args.steps}",
                       f"--repeats={args.repeats}"]
            if args.image_dir:
                command.append(f"--image_dir={args.image_dir}")
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            runs[setting].append(json.loads(output.strip().splitlines()[-1]))
            print(f"round {round_index + 1} {setting}: {runs[setting][-1]}", flush=True)
    print("\n| train step (batch 100) | " + " | ".join(
        f"{s}: img/s, faults/step" for s in SETTINGS) + " | retained ÷ defaults |")
    print("|---|---|---|---|")
    for key in runs[SETTINGS[0]][0]:
        cells = []
        medians = []
        for setting in SETTINGS:
            rates = [run[key][0] for run in runs[setting]]
            faults = [run[key][1] for run in runs[setting]]
            medians.append(statistics.median(rates))
            cells.append(f"{medians[-1]:.0f} ({' / '.join(f'{r:.0f}' for r in rates)}), "
                         f"{statistics.median(faults):.0f}")
        print(f"| {key} | " + " | ".join(cells) + f" | {medians[1] / medians[0]:.2f}× |")


if __name__ == "__main__":
    main()
