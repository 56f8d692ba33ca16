"""Data parallelism over every device of every process, with JAX's multi-controller runtime.

One 1-D ``Mesh`` with a ``data`` axis spans all devices (ordered by process, so each process's
devices hold a contiguous block of every batch). Batches and the training set are sharded along
it; the train state is replicated. Steps are jit-compiled over these global arrays, so
BatchNorm statistics, losses and metrics are over the global batch (XLA inserts the
all-reduces). Each process passes only its own rows (``process_share``) and builds the global
arrays with ``jax.make_array_from_process_local_data``. On one device this is plain ``jit``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxcolor.errors import UserError

DATA_AXIS = "data"
DISTRIBUTED_ENV = "JAXCOLOR_DISTRIBUTED"


def initialize_distributed(enabled: bool) -> None:
    """Join the multi-process runtime (TPU pod slices, GPU clusters) before any JAX work.

    ``jax.distributed.initialize()`` finds the coordinator itself on Cloud TPU and under SLURM;
    elsewhere set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
    """
    if enabled or os.environ.get(DISTRIBUTED_ENV, "") not in ("", "0"):
        jax.distributed.initialize()


def data_mesh() -> Mesh:
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (DATA_AXIS,))


def sharded(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the data axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """The global batch must split evenly over the devices; say which sizes would."""
    devices = mesh.size
    if batch_size % devices:
        lower = max(devices, batch_size - batch_size % devices)
        raise UserError(f"--batch_size={batch_size} does not divide over the {devices} devices; "
                        f"use a multiple of {devices}, e.g. {lower} or {lower + devices}.")


def process_share(count: int) -> slice:
    """This process's equal, contiguous share of ``count`` rows (the remainder is dropped)."""
    per_process = count // jax.process_count()
    start = jax.process_index() * per_process
    return slice(start, start + per_process)


def global_array(local: np.ndarray, sharding: NamedSharding, global_rows: int) -> jax.Array:
    """The global array whose leading-axis block on this process's devices is ``local``."""
    return jax.make_array_from_process_local_data(sharding, local,
                                                  (global_rows, *local.shape[1:]))


def local_copy(tree: Any) -> Any:
    """A replicated pytree as single-device arrays on this process (for predictions, figures
    and analysis, which each process may run on its own)."""
    return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


def broadcast_from_main(value: np.ndarray) -> np.ndarray:
    """Process 0's ``value`` on every process (identity with one process)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.broadcast_one_to_all(value))


def is_main_process() -> bool:
    return jax.process_index() == 0
