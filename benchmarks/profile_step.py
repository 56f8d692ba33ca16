"""Where one train step's time goes, in jaxcolor (XLA:CPU) and in PyTorch eager.

JAX: the compiled UNet/CNN step is traced with ``jax.profiler`` and its XLA op events summed by
kind (jaxcolor's native kernels: convolutions and BatchNorm sums; transposes, reductions,
convolutions that appear as events, other fusions); the rest of the step is time in no op event
(on XLA:CPU, XLA's own convolutions run as Eigen calls on the intra-op thread pool without an
event of their own).
Events of ops that run concurrently overlap, so the kinds can sum to more than the step.
PyTorch: ``torch.profiler`` self time per ATen op, grouped into convolutions (forward,
backward) and the rest, for NCHW and channels-last tensors. Same real batches for both
(``--image_dir``), batch 100 by default. Needs the ``bench`` extra (torch, xprof).

    python benchmarks/profile_step.py --image_dir=../shared/data/cifar10-jpeg [--model=unet]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
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

from train_throughput import benchmark_data  # noqa: E402

from jaxcolor.cpu import host_memory  # noqa: E402
from jaxcolor.models import MODELS, ModelSpec, build_model  # noqa: E402
from jaxcolor.objectives import CLASSIFICATION  # noqa: E402
from jaxcolor.training import parallel  # noqa: E402
from jaxcolor.training import state as train_state  # noqa: E402
from jaxcolor.training import steps as train  # noqa: E402

# XLA op event name → kind, first match wins.
JAX_KINDS = (("ffi_call", "native kernels: convolutions, BatchNorm sums (jaxcolor.cpu.native)"),
             ("transpose", "transposes (weight-gradient layouts)"), ("reduce", "reductions"),
             ("conv", "convolutions with an op event"), ("", "other fusions and copies"))
TORCH_CONVOLUTIONS = ("aten::convolution_backward", "aten::mkldnn_convolution")


def jax_profile(model_name: str, data: tuple[np.ndarray, np.ndarray], batch: int,
                steps: int) -> dict[str, float]:
    """Milliseconds per step: the step (median), and op event time by kind."""
    from xprof.convert import raw_to_tool_data

    count = batch * steps
    inputs, targets = (jnp.asarray(a[None, :count]) for a in data)
    order = jnp.arange(count).reshape(1, steps, batch)
    model = build_model(ModelSpec(model_name, num_filters=32, kernel=3, num_outputs=24))
    tx, mesh = optax.adam(1e-3), parallel.data_mesh()
    state = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
    step = train.make_train_step(model, tx, CLASSIFICATION, mesh).lower(
        state, inputs, targets, order, 0).compile()
    indices = [jnp.asarray(i, jnp.int32) for i in range(steps)]

    def run() -> float:
        nonlocal state
        start = time.perf_counter()
        for i in indices:
            state, loss = step(state, inputs, targets, order, i)
        loss.block_until_ready()
        return (time.perf_counter() - start) / steps * 1e3

    run()
    step_ms = statistics.median(run() for _ in range(5))
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        run()
        jax.profiler.stop_trace()
        xspace = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
        trace, _ = raw_to_tool_data.xspace_to_tool_data(xspace, "trace_viewer", {})
    totals: dict[str, float] = collections.Counter()
    for event in json.loads(trace)["traceEvents"]:
        name = event.get("name", "")
        if event.get("ph") != "X" or "dur" not in event or not _is_xla_op(name):
            continue
        kind = next(label for key, label in JAX_KINDS if key in name)
        totals[kind] += event["dur"] / 1e3 / steps
    result = {"step": step_ms, **totals}
    # Op events of work that runs concurrently can sum to more than the step (then < 0 here).
    result["in no op event (mostly Eigen convolutions)"] = step_ms - sum(totals.values())
    return result


def _is_xla_op(name: str) -> bool:
    """XLA HLO op events (fusions, copies, convolutions), not runtime or Python events."""
    runtime = ("ThreadpoolListener", "ThunkExecutor", "PjitFunction", "CommonPjRt", "Handle ")
    return bool(name) and not name.startswith(("$", *runtime))


def torch_profile(model_name: str, data: tuple[np.ndarray, np.ndarray], batch: int,
                  steps: int, channels_last: bool) -> dict[str, float]:
    """Milliseconds per step: the step (median), convolution and other ATen self time."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from torch_models import build, image_tensor

    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = build(model_name).to(memory_format=memory_format)
    optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()
    count = batch * steps
    inputs = [image_tensor(data[0][i * batch:(i + 1) * batch], channels_last)
              for i in range(steps)]
    targets = torch.from_numpy(data[1][:count].astype(np.int64)).reshape(steps, batch, 32, 32)

    def run() -> float:
        start = time.perf_counter()
        for i in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[i]), targets[i])
            loss.backward()
            optimizer.step()
        loss.item()
        return (time.perf_counter() - start) / steps * 1e3

    run()
    step_ms = statistics.median(run() for _ in range(5))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    self_ms = {e.key: e.self_cpu_time_total / 1e3 / steps for e in prof.key_averages()}
    convolutions = sum(self_ms.get(name, 0.0) for name in TORCH_CONVOLUTIONS)
    return {"step": step_ms, "convolutions (forward, backward)": convolutions,
            "other ATen ops": sum(self_ms.values()) - convolutions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", default=None, help="real horse batches (else random)")
    parser.add_argument("--model", default="unet", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    host_memory.retain_freed_memory()  # as jaxcolor's fit does
    data = benchmark_data(args.batch * args.steps, args.image_dir)
    profiles = {"jaxcolor (XLA:CPU)": jax_profile(args.model, data, args.batch, args.steps)}
    for channels_last in (False, True):
        label = f"PyTorch eager, {'channels-last' if channels_last else 'NCHW'}"
        profiles[label] = torch_profile(args.model, data, args.batch, args.steps, channels_last)
    print(f"{args.model}, batch {args.batch}, {'real' if args.image_dir else 'random'} images; "
          f"ms per step (profiled op times are from one traced run of {args.steps} steps)")
    for label, parts in profiles.items():
        print(f"\n{label}")
        for part, ms in parts.items():
            print(f"  {part:45s} {ms:7.2f} ms")


if __name__ == "__main__":
    main()
