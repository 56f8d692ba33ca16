"""Train-step throughput of jaxcolor's CNN and UNet, beside the same models in PyTorch eager.

For each model and batch size: JAX train-step images/s (after compilation; median of repeats),
compile seconds, eval images/s, achieved GFLOP/s (XLA's FLOP count of the step) next to a
measured matmul peak; then, when torch is installed, the PyTorch eager train step (same shapes,
Adam, cross-entropy) and the JAX/PyTorch ratio. Optionally the data preparation time (load,
k-means, labelling) of a category from an image folder. Runs on whatever device JAX and torch
see first (CPU here; CUDA when present). Prints a Markdown table; ``--json`` saves the rows.

    python benchmarks/train_throughput.py [--models=cnn,unet] [--batch_sizes=100,50]
        [--repeats=5] [--steps=10] [--image_dir=../shared/data/cifar10-jpeg] [--json=out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jaxcolor import parallel, train  # noqa: E402
from jaxcolor.models import build_model  # noqa: E402
from jaxcolor.objectives import CLASSIFICATION  # noqa: E402

NUM_COLOURS = 24


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(repeats: int) -> float:
    a = jax.random.normal(jax.random.key(0), (2048, 2048))
    product = jax.jit(lambda m: m @ m)
    seconds = median_seconds(lambda: product(a).block_until_ready(), repeats)
    return 2 * 2048**3 / seconds / 1e9


def jax_row(name: str, batch: int, steps: int, repeats: int, xla_defaults: bool = False) -> dict:
    """JAX's row; ``xla_defaults`` compiles the step without jaxcolor's compiler options."""
    rng = np.random.default_rng(0)
    count = steps * batch
    inputs = jnp.asarray(rng.random((1, count, 32, 32, 1), np.float32))
    targets = jnp.asarray(rng.integers(0, NUM_COLOURS, (1, count, 32, 32)).astype(np.int32))
    order = jnp.arange(count).reshape(1, steps, batch)
    model = build_model(name, num_filters=32, kernel=3, num_outputs=NUM_COLOURS)
    tx = optax.adam(1e-3)
    mesh = parallel.data_mesh()
    state = train.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
    start = time.perf_counter()
    train_step = (jax.jit(train._train_step(model, tx, CLASSIFICATION, mesh), donate_argnums=0)
                  if xla_defaults else train.make_train_step(model, tx, CLASSIFICATION, mesh))
    lowered = train_step.lower(state, inputs, targets, order, 0)
    step = lowered.compile()
    compile_seconds = time.perf_counter() - start
    # FLOPs of the step's HLO before backend passes (a GPU's cuDNN calls are not counted after).
    flops = float((lowered.cost_analysis() or {}).get("flops", float("nan")))
    indices = [jnp.asarray(i, jnp.int32) for i in range(steps)]
    holder = {"state": state}

    def run_steps() -> None:
        for i in indices:
            holder["state"], loss = step(holder["state"], inputs, targets, order, i)
        loss.block_until_ready()

    train_rate = count / median_seconds(run_steps, repeats)
    row = {"framework": "jax (XLA defaults)" if xla_defaults else "jax", "model": name,
           "batch": batch, "train_images_per_sec": train_rate,
           "compile_seconds": compile_seconds, "gflops_per_sec": flops * train_rate / batch / 1e9}
    if not xla_defaults:
        eval_step = train.make_eval_step(model, CLASSIFICATION, mesh)
        batches = train.device_batches([np.asarray(inputs[0]), np.asarray(targets[0])], batch,
                                       mesh)
        row["eval_images_per_sec"] = count / median_seconds(
            lambda: jax.block_until_ready(train.evaluate(eval_step, holder["state"], batches)),
            repeats)
    return row


def torch_row(name: str, batch: int, steps: int, repeats: int,
              norm_before_upsample: bool = False) -> dict | None:
    """PyTorch's row: the reference block order, or jaxcolor's (``norm_before_upsample``)."""
    try:
        import torch
    except ImportError:
        return None
    from torch_models import build

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = build(name, norm_before_upsample=norm_before_upsample).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    inputs = torch.rand(steps, batch, 1, 32, 32, device=device)
    targets = torch.randint(0, NUM_COLOURS, (steps, batch, 32, 32), device=device)

    def run_steps() -> None:
        for i in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[i]), targets[i])
            loss.backward()
            optimizer.step()
        loss.item()  # waits for the device

    rate = steps * batch / median_seconds(run_steps, repeats)
    order = "BN before upsample" if norm_before_upsample else "reference order"
    return {"framework": f"torch {torch.__version__} eager ({order})", "model": name,
            "batch": batch,
            "train_images_per_sec": rate, "threads": torch.get_num_threads()}


def data_prep_seconds(image_dir: str) -> float:
    """Cold load + k-means + labelling of the horse split (empty palette cache)."""
    from jaxcolor.config import ExperimentConfig
    from jaxcolor.experiment import load_task_data

    with tempfile.TemporaryDirectory() as cache:
        os.environ["JAXCOLOR_CACHE_DIR"] = cache
        start = time.perf_counter()
        load_task_data(ExperimentConfig(experiment="bench", image_dir=image_dir),
                       log=lambda line: None)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,unet")
    parser.add_argument("--batch_sizes", default="100,50")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="train steps per timed repeat")
    parser.add_argument("--image_dir", default=None, help="time data preparation from here")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--xla_defaults", action="store_true",
                        help="also time JAX compiled with XLA's default options")
    args = parser.parse_args()

    device = jax.devices()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"jax {jax.__version__} on {device.platform} ({device.device_kind})", flush=True)
    peak = matmul_gflops(args.repeats)
    print(f"2048² float32 matmul: {peak:.0f} GFLOP/s", flush=True)
    rows = []
    for name in args.models.split(","):
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            first = len(rows)
            if args.xla_defaults:
                rows.append(jax_row(name, batch, args.steps, args.repeats, xla_defaults=True))
            rows.append(jax_row(name, batch, args.steps, args.repeats))
            ours = rows[-1]
            for same_order in (False, True):
                reference = torch_row(name, batch, args.steps, args.repeats, same_order)
                if reference is not None:
                    key = "jax_over_torch_same_order" if same_order else "jax_over_torch"
                    ours[key] = ours["train_images_per_sec"] / reference["train_images_per_sec"]
                    rows.append(reference)
            print(json.dumps(rows[first:]), flush=True)

    print("\n| framework | model | batch | train img/s | compile s | eval img/s | GFLOP/s "
          "| JAX ÷ PyTorch (reference order / same order) |\n|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [row["framework"], row["model"], row["batch"],
                 f"{row['train_images_per_sec']:.0f}",
                 f"{row['compile_seconds']:.1f}" if "compile_seconds" in row else "",
                 f"{row['eval_images_per_sec']:.0f}" if "eval_images_per_sec" in row else "",
                 f"{row['gflops_per_sec']:.1f}" if "gflops_per_sec" in row else "",
                 " / ".join(f"{row[key]:.2f}×" for key in ("jax_over_torch",
                                                           "jax_over_torch_same_order")
                            if key in row)]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    summary = {"device": f"{device.platform} ({device.device_kind})", "cpus": os.cpu_count(),
               "matmul_gflops": peak, "rows": rows}
    if args.image_dir:
        summary["data_prep_seconds"] = data_prep_seconds(args.image_dir)
        print(f"\ndata preparation (load + k-means + labels, cold): "
              f"{summary['data_prep_seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
