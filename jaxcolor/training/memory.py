"""Does a compiled step fit in the memory left? Checked before the first step runs: a step that
does not fit would swap the machine to a standstill or be killed, long after the command was
typed (e.g. thousands of colour classes at a large batch)."""

from __future__ import annotations

import resource
from pathlib import Path

import jax

from jaxcolor.errors import UserError


def step_bytes(step: jax.stages.Compiled) -> int | None:
    """The memory one call of ``step`` allocates beyond its arguments (XLA's buffer plan:
    temporaries and outputs, less outputs written over donated arguments); None where the
    backend gives no plan."""
    try:
        plan = step.memory_analysis()
    except (NotImplementedError, AttributeError, RuntimeError):
        return None
    if plan is None:
        return None
    return plan.temp_size_in_bytes + plan.output_size_in_bytes - plan.alias_size_in_bytes


def _proc_kib(path: str, field: str) -> int | None:
    """A ``field:  N kB`` line of a /proc file, in bytes (None where there is none)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_free() -> int | None:
    """What this process's cgroup (v2) may still allocate, where it sets a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    return None if limit == "max" else int(limit) - int(used)


def host_free_bytes() -> int | None:
    """Host memory this process can still allocate: the least of the kernel's available memory,
    the cgroup's limit and the address-space limit (``ulimit -v``) left."""
    candidates = [_proc_kib("/proc/meminfo", "MemAvailable"), _cgroup_free()]
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    mapped = _proc_kib("/proc/self/status", "VmSize")
    if limit != resource.RLIM_INFINITY and mapped is not None:
        candidates.append(limit - mapped)
    known = [value for value in candidates if value is not None]
    return min(known) if known else None


def device_free_bytes(device: jax.Device) -> int | None:
    """Memory still free on ``device`` (the host's for CPU devices), None where unknown."""
    if device.platform == "cpu":
        return host_free_bytes()
    stats = device.memory_stats() or {}
    if "bytes_limit" not in stats:
        return None
    return stats["bytes_limit"] - stats.get("bytes_in_use", 0)


def check_steps_fit(steps: list[jax.stages.Compiled], devices: list[jax.Device],
                    settings: str) -> None:
    """A UserError when the largest of ``steps`` needs more memory than ``devices`` have free
    (CPU devices share the host's: their needs add up). ``settings`` names what to change."""
    needs = [need for need in map(step_bytes, steps) if need is not None]
    if not needs or not devices:
        return
    need = max(needs) * (len(devices) if devices[0].platform == "cpu" else 1)
    free = device_free_bytes(devices[0])
    if free is not None and need > free:
        raise UserError(f"one train step needs {_gigabytes(need)} of memory ({settings}), but "
                        f"{_gigabytes(free)} is free on this {devices[0].platform.upper()}; "
                        "lower --batch_size, --num_colours or --num_filters.")


def _gigabytes(count: int) -> str:
    return f"{count / 2**30:.{1 if count >= 2**30 else 2}f} GiB"
