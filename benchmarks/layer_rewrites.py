"""What each exact layer rewrite of ``jaxcolor.models.layers`` buys in whole train steps.

Compiles the CNN and UNet train step (batch 100, NF 32, 24 colours) four ways and times them
interleaved, round after round, in one process (this machine's speed drifts between runs):

- ``reference layers``: every layer input is built at full resolution (upsampled maps
  upsampled, skips concatenated) and convolved once, flax's ``nn.BatchNorm`` — the computation
  before the rewrites;
- ``+ upsampled-conv rewrite``: ``layers.conv_of_upsampled`` (half-resolution phase kernels);
- ``+ fused BatchNorm``: ``layers.BatchNorm`` (closed-form backward, per-channel sums as matrix
  products on CPU);
- ``+ native conv kernels`` (what jaxcolor runs on CPU): ``jaxcolor.cpu.native``'s convolution and
  weight-gradient kernels instead of XLA's convolutions (the first three use XLA's).

All four compute the same function (``tests/models/test_networks.py``,
``tests/models/test_layers.py``, ``tests/cpu/test_native.py``).
Batches are real horse images with ``--image_dir`` (else random). ``--lab_bins`` times q7's
Lab-bins UNet instead (261-class 1×1 head, class-rebalanced soft-encoded loss; needs
``--image_dir``).

    python benchmarks/layer_rewrites.py [--image_dir=../shared/data/cifar10-jpeg]
        [--rounds=8] [--steps=10] [--lab_bins]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_throughput import benchmark_data  # noqa: E402

from jaxcolor.config import ExperimentConfig  # noqa: E402
from jaxcolor.cpu import host_memory  # noqa: E402
from jaxcolor.models import ModelSpec, build_model, layers  # noqa: E402
from jaxcolor.models import networks as models  # noqa: E402
from jaxcolor.objectives import CLASSIFICATION, Objective  # noqa: E402
from jaxcolor.runner import load_task_data, model_spec  # noqa: E402
from jaxcolor.training import parallel  # noqa: E402
from jaxcolor.training import state as train_state  # noqa: E402
from jaxcolor.training import steps as train  # noqa: E402


class ReferenceConv(layers.Conv):
    """``layers.Conv`` computed literally: upsample, concatenate, one convolution."""

    @nn.compact
    def __call__(self, parts: layers.Parts) -> jax.Array:
        inputs = jnp.concatenate([layers.upsample2x(x) if upsampled else x
                                  for x, upsampled in parts], axis=-1)
        kernel = self.param("kernel", layers.CONV_INITS[self.conv_init],
                            (self.kernel, self.kernel, inputs.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return layers.conv2d(inputs, kernel, impl=self.impl) + bias


class ReferenceBatchNorm(nn.BatchNorm):
    """flax's own BatchNorm (it has no convolution implementation to choose)."""

    impl: str = "auto"


def reference_layers() -> None:
    models.BatchNorm = ReferenceBatchNorm
    models.Conv = ReferenceConv


def upsampled_conv_rewrite() -> None:
    models.Conv = ORIGINAL["Conv"]


def fused_batch_norm() -> None:
    models.BatchNorm = ORIGINAL["BatchNorm"]


ORIGINAL = {"BatchNorm": models.BatchNorm, "Conv": models.Conv}
# Applied in this order, each on top of the previous (the modules look these up at trace time),
# and the convolution implementation each builds its model with.
VARIANTS: dict[str, tuple[Callable[[], None], str]] = {
    "reference layers": (reference_layers, "xla"),
    "+ upsampled-conv rewrite": (upsampled_conv_rewrite, "xla"),
    "+ fused BatchNorm": (fused_batch_norm, "xla"),
    "+ native conv kernels": (lambda: None, "auto")}


def lab_bins_setup(image_dir: str, count: int
                   ) -> tuple[jax.Array, jax.Array, Callable[[str, str], nn.Module], Objective]:
    """q7's Lab-bins task on the first ``count`` horse images: L inputs, soft-encoded ab targets,
    the model builder and the class-rebalanced objective, as ``experiments/q7_lab.py`` sets
    them up."""
    cfg = ExperimentConfig(experiment="bench", model="unet", task="lab_bins",
                           image_dir=image_dir)
    data = load_task_data(cfg, log=lambda line: None)
    objective = data.task.rebalanced_objective(data.train_targets)
    inputs, targets = (jnp.asarray(a[None, :count]) for a in (
        data.train_inputs, objective.prepare(data.train_targets[:count])))
    return (inputs, targets, lambda name, impl: build_model(model_spec(cfg.replace(
        conv_impl=impl), data.task)), objective)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", default=None)
    parser.add_argument("--models", default="cnn,unet")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lab_bins", action="store_true", help="q7's Lab-bins UNet")
    args = parser.parse_args()
    host_memory.retain_freed_memory()  # as jaxcolor's fit does
    if args.lab_bins and not args.image_dir:
        parser.error("--lab_bins needs --image_dir")
    batch = 100
    count = batch * args.steps
    if args.lab_bins:
        inputs, targets, build, objective = lab_bins_setup(args.image_dir, count)
        names = ["unet"]
    else:
        inputs, targets = (jnp.asarray(a[None]) for a in benchmark_data(count, args.image_dir))
        objective, names = CLASSIFICATION, args.models.split(",")

        def build(name: str, impl: str) -> nn.Module:
            return build_model(ModelSpec(name, num_filters=32, kernel=3, num_outputs=24,
                                         conv_impl=impl))
    order = jnp.arange(count).reshape(1, args.steps, batch)
    indices = [jnp.asarray(i, jnp.int32) for i in range(args.steps)]
    mesh, tx = parallel.data_mesh(), optax.adam(1e-3)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; batch {batch}, "
          f"{'real' if args.image_dir else 'random'} images; {args.rounds} interleaved rounds "
          f"of {args.steps} steps", flush=True)
    for name in names:
        compiled = {}
        for label, (apply_variant, impl) in VARIANTS.items():
            apply_variant()
            model = build(name, impl)
            state = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
            step = train.make_train_step(model, tx, objective, mesh).lower(
                state, inputs, targets, order, 0).compile()
            compiled[label] = [step, state]
        rates: dict[str, list[float]] = {label: [] for label in compiled}
        for round_index in range(args.rounds + 1):  # round 0 warms up
            for label, holder in compiled.items():
                start = time.perf_counter()
                for i in indices:
                    holder[1], loss = holder[0](holder[1], inputs, targets, order, i)
                loss.block_until_ready()
                if round_index:
                    rates[label].append(count / (time.perf_counter() - start))
        base = statistics.median(rates["reference layers"])
        for label, values in rates.items():
            median = statistics.median(values)
            rounds = " ".join(f"{v:.0f}" for v in values)
            print(f"{'lab_bins' if args.lab_bins else name:8s} {label:26s} {median:7.0f} img/s"
                  f"  {median / base:.2f}×  (rounds: {rounds})", flush=True)


if __name__ == "__main__":
    main()
