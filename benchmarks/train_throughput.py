"""Train-step throughput of jaxcolor's nets, beside the same models in PyTorch eager.

Both frameworks train on the same batches: the first horse images of ``--image_dir`` and their
24-colour labels (``--data=real``, the default when ``--image_dir`` is given), or uniform random
images and labels (``--data=random``). The choice matters for PyTorch: its CPU kernels run
faster on real images than on random ones (its max-pooling branches on the data; denormals
cost it too), while XLA's compiled steps take the same time on both.

For each model and batch size: JAX train-step images/s (after compilation; the median of
``--repeats`` rounds, each timing every configuration of the model once, so that the machine's slow
spells fall on both frameworks alike), compile seconds, eval images/s, achieved GFLOP/s (XLA's FLOP
count of the step) next to a measured matmul peak; ``--xla_convolutions`` adds jaxcolor with XLA's
convolutions instead of its native CPU kernels, ``--xla_defaults`` with XLA's default compiler
options too. Then, when torch is installed, the PyTorch eager train step (same shapes, Adam,
cross-entropy) and the JAX/PyTorch ratio. Each model and batch size is timed in fresh processes
(this file with ``--worker=jax``, which drives ``--worker=torch`` round by round over a pipe), so
that no rate depends on what ran before it in the process or on the other framework's idle
threads. This VM's slow spells still move a rate between invocations (UNet 1,168–1,326 img/s,
2026-11-25): BENCHMARKS.md quotes the median of three. Optionally the data preparation time
(load, k-means, labelling) of a category from an image folder. Runs on whatever device JAX and
torch see first (CPU here; CUDA when present). Prints a Markdown table; ``--json`` saves the rows.
All processes keep freed host memory as jaxcolor's training does (``jaxcolor.cpu.host_memory``;
PyTorch gains from it less: ``benchmarks/host_memory.py``).

    python benchmarks/train_throughput.py [--models=cnn,unet,conv_transpose,unet_transpose]
        [--batch_sizes=100,50] [--repeats=5] [--steps=10] [--image_dir=../shared/data/cifar10-jpeg]
        [--data=real|random] [--json=out.json] [--xla_convolutions] [--xla_defaults]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jaxcolor.cpu import host_memory, native  # noqa: E402
from jaxcolor.models import ModelSpec, build_model  # noqa: E402
from jaxcolor.objectives import CLASSIFICATION  # noqa: E402
from jaxcolor.training import parallel  # noqa: E402
from jaxcolor.training import state as train_state  # noqa: E402
from jaxcolor.training import steps as train  # noqa: E402

NUM_COLOURS = 24
# PyTorch configurations timed: the reference model as written (NCHW), the same in the
# channels-last memory format (PyTorch's recommended CPU layout for convolutions; much faster
# here), and channels-last with jaxcolor's up-block order (BatchNorm before upsampling).
TORCH_VARIANTS = {"reference": "NCHW, reference order",
                  "channels_last": "channels-last, reference order",
                  "channels_last_bn_first": "channels-last, BN before upsample",
                  "channels_last_bf16": "channels-last, bfloat16 autocast"}
UPSAMPLING_MODELS = ("cnn", "unet", "pool_upsample")  # the nets with nearest upsampling


def median_seconds(run, repeats: int) -> float:
    return interleaved_median_seconds([run], repeats)[0]


def interleaved_median_seconds(runs: list, repeats: int) -> list[float]:
    """Median seconds of each of ``runs`` over ``repeats`` rounds that time every run once,
    after one warm-up each: a slow spell of a shared machine falls on all of them alike, so
    their ratios hold where their absolute rates do not."""
    for run in runs:
        run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, spent in zip(runs, times, strict=True):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def matmul_gflops(repeats: int, precision: str = "float32") -> float:
    """A 2048² matmul's rate in ``precision`` (float32 accumulation): the peak a step in that
    precision is measured against."""
    a = jax.random.normal(jax.random.key(0), (2048, 2048)).astype(precision)
    product = jax.jit(lambda m: jnp.matmul(m, m, preferred_element_type=jnp.float32))
    seconds = median_seconds(lambda: product(a).block_until_ready(), repeats)
    return 2 * 2048**3 / seconds / 1e9


def benchmark_data(count: int, image_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` grey images (count, 32, 32, 1) and colour labels (count, 32, 32): the first
    horse training images of ``image_dir`` (repeated if fewer), or uniform random ones."""
    if image_dir is None:
        rng = np.random.default_rng(0)
        return (rng.random((count, 32, 32, 1), np.float32),
                rng.integers(0, NUM_COLOURS, (count, 32, 32)).astype(np.int32))
    from jaxcolor.config import ExperimentConfig
    from jaxcolor.runner import load_task_data

    data = load_task_data(ExperimentConfig(experiment="bench", image_dir=image_dir),
                          log=lambda line: None)
    rows = np.arange(count) % len(data.train_inputs)
    return data.train_inputs[rows], data.train_targets[rows].astype(np.int32)


@contextlib.contextmanager
def native_kernels_off():
    """Within: jaxcolor runs as with ``JAXCOLOR_NATIVE=0`` (XLA's convolutions, phase forms)."""
    before = os.environ.get(native.DISABLE_ENV)
    os.environ[native.DISABLE_ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[native.DISABLE_ENV]
        else:
            os.environ[native.DISABLE_ENV] = before


def jax_model(name: str, conv_impl: str = "auto") -> nn.Module:
    """The benchmarked net ``name`` with the convolutions of ``conv_impl`` (``xla``: XLA's, not
    jaxcolor's native CPU kernels, ``jaxcolor.cpu.native``)."""
    return build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=NUM_COLOURS,
                                 conv_impl=conv_impl))


# JAX configurations: jaxcolor as it runs; its step compiled with XLA's default options and
# XLA's convolutions; jaxcolor with XLA's convolutions instead of its native CPU kernels.
JAX_VARIANTS = {"jaxcolor": "jax", "xla_defaults": "jax (XLA defaults)",
                "xla_convolutions": "jax (XLA convolutions)"}


def jax_row(name: str, batch: int, steps: int, repeats: int,
            data: tuple[np.ndarray, np.ndarray], variant: str = "jaxcolor",
            precision: str = "float32") -> tuple[dict, Callable[[], None]]:
    """JAX's row on ``data`` (steps·batch images, labels) for one of ``JAX_VARIANTS`` computing
    in ``precision`` (the dtype its inputs enter the model in, as ``fit`` does), and the
    function that runs its ``steps`` train steps (timed by the caller)."""
    count = steps * batch
    inputs = jnp.asarray(data[0][None, :count], precision)
    targets = jnp.asarray(data[1][None, :count])
    order = jnp.arange(count).reshape(1, steps, batch)
    model = jax_model(name, "auto" if variant == "jaxcolor" else "xla")
    tx = optax.adam(1e-3)
    mesh = parallel.data_mesh()
    state = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
    start = time.perf_counter()
    train_step = (jax.jit(train._train_step(model, tx, CLASSIFICATION, mesh), donate_argnums=0)
                  if variant == "xla_defaults"
                  else train.make_train_step(model, tx, CLASSIFICATION, mesh))
    lowered = train_step.lower(state, inputs, targets, order, 0)
    step = lowered.compile()
    compile_seconds = time.perf_counter() - start
    # FLOPs of the step's HLO before backend passes (a GPU's cuDNN calls are not counted after),
    # counted with XLA's convolutions (XLA counts none for the native kernels' custom calls) in
    # the stride-2 layers' phase forms (XLA's own transposed ones count the dilation's zeros).
    with native_kernels_off():
        flops = float((train.make_train_step(jax_model(name), tx, CLASSIFICATION, mesh).lower(
            state, inputs.astype(jnp.float32), targets, order, 0).cost_analysis() or {}).get(
                "flops", float("nan")))
    indices = [jnp.asarray(i, jnp.int32) for i in range(steps)]
    holder = {"state": state}

    def run_steps() -> None:
        for i in indices:
            holder["state"], loss = step(holder["state"], inputs, targets, order, i)
        loss.block_until_ready()

    row = {"framework": JAX_VARIANTS[variant] + f" {precision}", "model": name, "batch": batch,
           "jax_variant": variant, "precision": precision, "compile_seconds": compile_seconds,
           "step_flops": flops}
    if variant == "jaxcolor":
        eval_step = train.make_eval_step(model, CLASSIFICATION, mesh)
        batches = train.device_batches([np.asarray(inputs[0]), np.asarray(targets[0])], batch,
                                       mesh)
        row["eval_images_per_sec"] = count / median_seconds(
            lambda: jax.block_until_ready(train.evaluate(eval_step, holder["state"], batches)),
            repeats)
    return row, run_steps


def torch_row(name: str, batch: int, steps: int, data: tuple[np.ndarray, np.ndarray],
              variant: str = "reference") -> tuple[dict, Callable[[], None]]:
    """PyTorch's row on ``data`` for one of :data:`TORCH_VARIANTS`, and the function that runs
    its ``steps`` train steps (in the worker process)."""
    import torch
    from torch_models import build, image_tensor

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    channels_last = variant != "reference"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build(name, norm_before_upsample=variant == "channels_last_bn_first").to(
        device, memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    count = steps * batch
    inputs = [image_tensor(data[0][i * batch:(i + 1) * batch], channels_last).to(device)
              for i in range(steps)]
    targets = torch.from_numpy(data[1][:count].astype(np.int64)).reshape(
        steps, batch, 32, 32).to(device)

    def run_steps() -> None:
        for i in range(steps):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device, torch.bfloat16, enabled=variant.endswith("_bf16")):
                loss = loss_fn(model(inputs[i]), targets[i])
            loss.backward()
            optimizer.step()
        loss.item()  # waits for the device

    return ({"framework": f"torch {torch.__version__} eager ({TORCH_VARIANTS[variant]})",
             "model": name, "batch": batch, "variant": variant,
             "threads": torch.get_num_threads()}, run_steps)


def saved_batches(data_file: str) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels the main process saved for its workers."""
    with np.load(data_file) as arrays:
        return arrays["inputs"], arrays["targets"]


def torch_variants(name: str) -> list[str]:
    """The PyTorch configurations timed for model ``name``."""
    return [variant for variant in TORCH_VARIANTS
            if variant != "channels_last_bn_first" or name in UPSAMPLING_MODELS]


def torch_worker(name: str, batch: int, steps: int, data_file: str) -> None:
    """Serve PyTorch's rounds of one model and batch size: print the rows as one JSON line, then
    for each variant named on stdin run its steps and print a line when they are done (the
    caller times the round trip; the pipe adds well under a millisecond to rounds of ~1 s)."""
    host_memory.retain_freed_memory()  # as the JAX process does
    data = saved_batches(data_file)
    served = {variant: torch_row(name, batch, steps, data, variant)
              for variant in torch_variants(name)}
    print(json.dumps([row for row, _ in served.values()]), flush=True)
    for line in sys.stdin:
        served[line.strip()][1]()
        print("done", flush=True)


class TorchWorker(contextlib.AbstractContextManager):
    """PyTorch's rows of one model and batch size, timed in a worker process: ``rows`` and one
    function per row that runs that row's steps there and waits for them."""

    def __init__(self, name: str, batch: int, steps: int, data_file: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker=torch", f"--models={name}",
             f"--batch_sizes={batch}", f"--steps={steps}", f"--data_file={data_file}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.rows = json.loads(self._reply())
        self.runs = [functools.partial(self._run, row["variant"]) for row in self.rows]

    def _reply(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"error: the PyTorch worker exited ({self.process.wait()})")
        return line

    def _run(self, variant: str) -> None:
        self.process.stdin.write(variant + "\n")
        self.process.stdin.flush()
        self._reply()

    def __exit__(self, *exc_info) -> None:
        self.process.stdin.close()
        self.process.wait()


def timed_rows(name: str, batch: int, args: argparse.Namespace,
               data: tuple[np.ndarray, np.ndarray], data_file: str) -> None:
    """Print the rows of one model and batch size as a JSON line: JAX's variants, then
    PyTorch's (in a worker process when torch is installed), timed in interleaved rounds;
    JAX's row gets the ratios."""
    timed = [jax_row(name, batch, args.steps, args.repeats, data, variant)
             for variant in ("xla_defaults", "xla_convolutions") if getattr(args, variant)]
    timed += [jax_row(name, batch, args.steps, args.repeats, data, precision=precision)
              for precision in args.precisions.split(",")]
    ours = [row for row, _ in timed if row.get("jax_variant") == "jaxcolor"]
    with (TorchWorker(name, batch, args.steps, data_file)
          if importlib.util.find_spec("torch") else contextlib.nullcontext()) as worker:
        if worker is not None:
            timed.extend(zip(worker.rows, worker.runs, strict=True))
        seconds = interleaved_median_seconds([run for _, run in timed], args.repeats)
    for (row, _), spent in zip(timed, seconds, strict=True):
        row["train_images_per_sec"] = args.steps * batch / spent
        if "step_flops" in row:
            row["gflops_per_sec"] = row.pop("step_flops") * args.steps / spent / 1e9
    for row, _ in timed:
        if "variant" in row:  # PyTorch's
            for mine in ours:
                mine[f"jax_over_torch_{row['variant']}"] = (
                    mine["train_images_per_sec"] / row["train_images_per_sec"])
    print(json.dumps([row for row, _ in timed]), flush=True)


def fresh_process_rows(name: str, batch: int, args: argparse.Namespace, data_file: str
                       ) -> list[dict]:
    """:func:`timed_rows` in a fresh process (this file with ``--worker=jax``)."""
    command = [sys.executable, __file__, "--worker=jax", f"--models={name}",
               f"--batch_sizes={batch}", f"--repeats={args.repeats}", f"--steps={args.steps}",
               f"--data_file={data_file}", f"--precisions={args.precisions}"]
    command += [f"--{flag}" for flag in ("xla_defaults", "xla_convolutions")
                if getattr(args, flag)]
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"error: timing {name} at batch {batch} failed ({result.returncode})")
    rows_line = result.stdout.splitlines()[-1]
    print(rows_line, flush=True)
    return json.loads(rows_line)


def data_prep_seconds(image_dir: str) -> float:
    """Cold load + k-means + labelling of the horse split (empty palette cache)."""
    from jaxcolor.config import ExperimentConfig
    from jaxcolor.runner import load_task_data

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
    parser.add_argument("--image_dir", default=None,
                        help="time data preparation from here (and train on its images)")
    parser.add_argument("--data", choices=["real", "random"], default=None,
                        help="train-step batches (default: real with --image_dir, else random)")
    parser.add_argument("--json", default=None, help="also write the rows here")
    parser.add_argument("--xla_defaults", action="store_true",
                        help="also time JAX compiled with XLA's default options")
    parser.add_argument("--xla_convolutions", action="store_true",
                        help="also time jaxcolor with XLA's convolutions (no native kernels)")
    parser.add_argument("--precisions", default="float32,bfloat16",
                        help="jaxcolor's rows: one per precision (--precision of the scripts)")
    parser.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--data_file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "torch":
        torch_worker(args.models, int(args.batch_sizes), args.steps, args.data_file)
        return
    if args.worker == "jax":
        host_memory.retain_freed_memory()
        timed_rows(args.models, int(args.batch_sizes), args, saved_batches(args.data_file),
                   args.data_file)
        return
    data_kind = args.data or ("real" if args.image_dir else "random")
    if data_kind == "real" and not args.image_dir:
        parser.error("--data=real needs --image_dir (the CIFAR-10 image folder)")

    retained = host_memory.retain_freed_memory()  # as jaxcolor's fit does; PyTorch shares it
    device = jax.devices()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"jax {jax.__version__} on {device.platform} ({device.device_kind})", flush=True)
    peaks = {precision: matmul_gflops(args.repeats, precision)
             for precision in args.precisions.split(",")}
    print(f"2048² matmul: {', '.join(f'{p} {g:.0f}' for p, g in peaks.items())} GFLOP/s; "
          f"jaxcolor's native CPU kernels: "
          f"{'on' if native.available() else 'off'}; freed host memory retained (both "
          f"frameworks): {'yes' if retained else 'no'}", flush=True)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    data = benchmark_data(args.steps * max(batch_sizes),
                          args.image_dir if data_kind == "real" else None)
    print(f"train-step batches: {data_kind} images", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        data_file = str(Path(scratch) / "batches.npz")  # what every worker trains on
        np.savez(data_file, inputs=data[0], targets=data[1])
        rows = [row for name in args.models.split(",") for batch in batch_sizes
                for row in fresh_process_rows(name, batch, args, data_file)]
    print("\n| framework | model | batch | train img/s | compile s | eval img/s | GFLOP/s "
          "(of its precision's matmul) | JAX ÷ PyTorch (" + " / ".join(TORCH_VARIANTS.values())
          + ") |\n|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [row["framework"], row["model"], row["batch"],
                 f"{row['train_images_per_sec']:.0f}",
                 f"{row['compile_seconds']:.1f}" if "compile_seconds" in row else "",
                 f"{row['eval_images_per_sec']:.0f}" if "eval_images_per_sec" in row else "",
                 (f"{row['gflops_per_sec']:.1f} "
                  f"({row['gflops_per_sec'] / peaks[row['precision']]:.0%})")
                 if "gflops_per_sec" in row else "",
                 " / ".join(f"{row[key]:.2f}×" for key in
                            (f"jax_over_torch_{variant}" for variant in TORCH_VARIANTS)
                            if key in row)]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    summary = {"device": f"{device.platform} ({device.device_kind})", "cpus": os.cpu_count(),
               "matmul_gflops": peaks, "native_kernels": native.available(),
               "host_memory_retained": retained, "data": data_kind, "rows": rows}
    if args.image_dir:
        summary["data_prep_seconds"] = data_prep_seconds(args.image_dir)
        print(f"\ndata preparation (load + k-means + labels, cold): "
              f"{summary['data_prep_seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
