"""Per-run Orbax checkpoints: the whole TrainState (params, BatchNorm statistics, optimizer
state, step and the PRNG key that draws each epoch's data order) plus the epoch history and a
fingerprint of what produced them, so a resumed run continues bit-for-bit and a mismatched
checkpoint is refused with a message instead of silently mixed in.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
kill during a write leaves the previous checkpoint intact (unfinished ones are ignored). Saves
are asynchronous: the state is copied off the device before ``save`` returns (the next train
step may then reuse its buffers), the files are written on a background thread while training
goes on (the checkpoint phase of BENCHMARKS.md, "The whole job, cold"); ``wait`` (called by
``fit`` before it returns), ``restore`` and ``close`` wait for writes in flight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers

from jaxcolor.config import ExperimentConfig, default_of, setting_of, settings_where
from jaxcolor.errors import UserError
from jaxcolor.training import parallel
from jaxcolor.training.state import EpochRecord, TrainState


def run_name(cfg: ExperimentConfig) -> str:
    """Names one training run whatever its length (a longer run extends a shorter one): the
    settings declared with a ``run_name`` format, in order (some only away from their
    default)."""
    parts = [setting_of(name).run_name.format(getattr(cfg, name))
             for name in settings_where() if setting_of(name).run_name is not None
             and (setting_of(name).named_at_default or getattr(cfg, name) != default_of(name))]
    return "_".join(parts) + _schedule_name(cfg)


def _schedule_name(cfg: ExperimentConfig) -> str:
    """A scheduled run's length and warm-up fix its every step (a longer cosine run does not
    extend a shorter one), so they name it; constant-rate runs keep their old names."""
    if cfg.lr_schedule == "constant":
        return ""
    return f"_{cfg.lr_schedule}{cfg.epochs}" + (f"w{cfg.warmup_epochs}" if cfg.warmup_epochs
                                                 else "")


def run_fingerprint(cfg: ExperimentConfig, arrays: Sequence[np.ndarray], train_images: int
                    ) -> dict[str, Any]:
    """What must match for a checkpoint to continue this run: every setting that changes the
    training trajectory, the number of training images and a digest of ``arrays`` (the
    training inputs and targets and what else the task depends on, e.g. its palette) over
    every process's share."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return {**{name: getattr(cfg, name) for name in settings_where(fingerprint=True)},
            # A scheduled run's length fixes its every step; a constant-rate one extends.
            **({"epochs": cfg.epochs} if cfg.lr_schedule != "constant" else {}),
            "train_images": train_images,
            "data_sha256": parallel.digest_over_processes(digest.digest()).hex()[:16]}


def _first_failure(error: BaseException) -> BaseException:
    """The error at the start of ``error``'s chain of causes: what failed, on which file."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


class DamagedCheckpointError(UserError):
    """A checkpoint whose files cannot be read back (truncated, garbled)."""

    def __init__(self, directory: epath.Path, epoch: int, cause: BaseException) -> None:
        cause = _first_failure(cause)
        reason = _first_line(cause)
        reason = reason if len(reason) <= 240 else reason[:240] + "…"
        self.problem = (f"the checkpoint of epoch {epoch} in {directory} cannot be read "
                        f"({type(cause).__name__}: {reason})")
        super().__init__(f"{self.problem}; use --noresume to start this run afresh.")
        self.epoch = epoch


def is_write_failure(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a failure of the storage under a write: an
    ``OSError``, or TensorStore's report of one, which Orbax passes on as a ``ValueError``."""
    while error is not None:
        if isinstance(error, OSError) or any(
                marker in str(error) for marker in WRITE_FAILURE_MARKERS):
            return True
        error = error.__cause__ or error.__context__
    return False


# How TensorStore (under Orbax) words a storage failure: its status codes and the OS error.
WRITE_FAILURE_MARKERS = ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "os_error_code")


class CheckpointWriteError(UserError):
    """A checkpoint that could not be written; the newest finished one stays."""

    def __init__(self, directory: epath.Path, kept: int | None, cause: BaseException) -> None:
        reason = _first_line(_first_failure(cause))
        if "os_error_code" in reason or len(reason) > 240:  # TensorStore: the OS's words
            reason = reason.split(": ")[-1].split(" [os_error_code")[0]
        kept_text = (f"epoch {kept}'s checkpoint is kept there" if kept is not None
                     else "no checkpoint of this run was finished there")
        super().__init__(f"cannot write checkpoints in {directory}: {reason}. {kept_text}; once "
                         "the folder can be written again (space, permission, quota), the same "
                         "command goes on, or use another --checkpoint_dir.")


@functools.cache
def _closed_loop_reports_left_out() -> None:
    """After a failed write or read, TensorStore's threads still hand results to Orbax's event
    loop, which is closed by then; each prints "RuntimeError: Event loop is closed" as an
    error nobody can catch (``sys.unraisablehook``). Those reports are left out: the failure
    itself reaches the caller."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not (unraisable.exc_type is RuntimeError
                and str(unraisable.exc_value) == "Event loop is closed"):
            previous(unraisable)

    sys.unraisablehook = hook


def _stray_read_reports_left_out(checkpoint: epath.Path) -> None:
    """A failed restore's other reads may end after it, at any later time (while it settles, or
    long after); asyncio then logs "Task exception was never retrieved" with each one's error,
    which names the files read. Those about ``checkpoint`` (reported once, as damaged, by the
    restore that failed) are left out; a restore that succeeds has none."""
    named = f"{checkpoint}{os.sep}"
    logging.getLogger("asyncio").addFilter(
        lambda record: named not in record.getMessage())


SETTLE_ROUNDS = 10  # of 50 ms: for the other reads of a failed restore to end


@contextlib.contextmanager
def _unraisable_silenced() -> Iterator[None]:
    """Python's reports of errors nobody can catch (``sys.unraisablehook``), silenced: a failed
    Orbax restore leaves its other reads' coroutines to be collected with their errors, each
    with a traceback on stderr (the failure itself is reported once, by the caller)."""
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        sys.unraisablehook = hook


@dataclasses.dataclass(frozen=True)
class CheckpointPolicy:
    every: int = 1  # save after every N-th epoch; 0 = only the last and ``keep_epochs``
    keep: int = 2  # newest checkpoints kept, besides the ``keep_epochs`` ones
    resume: bool = True  # continue from the newest checkpoint when one exists


class Checkpoints:
    """Checkpoints of one training run in ``directory``, one per saved epoch.

    ``fingerprint`` (JSON-able) describes the run; restoring a checkpoint with a different one
    raises UserError naming the fields that differ. Epochs in ``keep_epochs`` are always saved
    and never deleted (reported intermediate epochs must survive a restart).
    """

    def __init__(self, directory: str | os.PathLike, fingerprint: dict[str, Any], *,
                 epochs: int, policy: CheckpointPolicy = CheckpointPolicy(),
                 keep_epochs: Sequence[int] = ()) -> None:
        # Orbax's own path type: a local folder or a cloud one (gs://bucket/…).
        path = epath.Path(directory)
        self.directory = path if "://" in str(directory) else path.absolute()
        self.fingerprint = fingerprint
        self.policy = policy
        if not policy.resume and self.directory.exists():
            self.directory.rmtree()
        pinned = sorted({*keep_epochs, epochs})
        save_policies: list[Any] = [checkpoint_managers.SpecificStepsPolicy(pinned)]
        if policy.every > 0:
            save_policies.append(checkpoint_managers.FixedIntervalPolicy(policy.every))
        options = ocp.CheckpointManagerOptions(
            enable_async_checkpointing=True,
            cleanup_tmp_directories=True,  # the unfinished saves of a killed run
            save_decision_policy=checkpoint_managers.AnySavePolicy(save_policies),
            preservation_policy=checkpoint_managers.AnyPreservationPolicy([
                checkpoint_managers.LatestN(max(policy.keep, 1)),
                checkpoint_managers.CustomSteps(pinned)]))
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._failed = False  # a write failed: nothing more is written
        _closed_loop_reports_left_out()

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def epochs(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, epoch: int, state: TrainState, history: Sequence[EpochRecord]) -> bool:
        """Save after ``epoch`` if the policy says so; True when a checkpoint was written.
        Raises :class:`CheckpointWriteError` for this or an earlier save that failed."""
        meta = {"fingerprint": self.fingerprint,
                "history": [dataclasses.asdict(record) for record in history]}
        with self._write_failures():
            return self._manager.save(epoch, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))

    @contextlib.contextmanager
    def _write_failures(self) -> Iterator[None]:
        """A failed write (disk full, no permission, quota) as one :class:`CheckpointWriteError`;
        Orbax's unfinished folders removed, so the space they took is free again."""
        try:
            yield
        except Exception as err:
            if not is_write_failure(err):
                raise
            self._failed = True
            for unfinished in self.directory.glob("*.orbax-checkpoint-tmp*"):
                unfinished.rmtree(missing_ok=True)
            self._manager.reload()
            raise CheckpointWriteError(self.directory, self._manager.latest_step(),
                                       err) from None

    def restore(self, epoch: int, like: TrainState) -> tuple[TrainState, list[EpochRecord]]:
        """The state and history saved after ``epoch``; ``like`` gives the pytree structure.
        Raises :class:`DamagedCheckpointError` when its files cannot be read."""
        self.wait()
        try:
            # Metadata first: a different run's arrays may not even fit ``like``'s shapes.
            meta = self._manager.restore(epoch, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore())).meta
            fingerprint = meta["fingerprint"]
            history = [EpochRecord(**record) for record in meta["history"][:epoch]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DamagedCheckpointError(self.directory, epoch, err) from err
        self._check_fingerprint(fingerprint)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        _stray_read_reports_left_out(self.directory / str(epoch))
        failure = None
        with _unraisable_silenced():
            try:
                state = self._manager.restore(epoch, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract))).state
            except Exception as err:  # TensorStore's read errors reach here as bare Exceptions
                failure = DamagedCheckpointError(self.directory, epoch, err)
            if failure is not None:  # Orbax's unfinished reads end and are collected, silenced
                for _ in range(SETTLE_ROUNDS):
                    time.sleep(0.05)
                    gc.collect()
        if failure is not None:
            raise failure
        return state, history

    def set_aside(self, epoch: int) -> epath.Path:
        """Move ``epoch``'s checkpoint out of the run's steps (to ``damaged-<epoch>`` beside
        them), so that training past it saves it anew; the new path."""
        target = self.directory / f"damaged-{epoch}"
        if target.exists():
            target.rmtree()
        (self.directory / str(epoch)).rename(target)
        self._manager.reload()
        return target

    def _check_fingerprint(self, saved: dict[str, Any]) -> None:
        """A UserError naming every setting that differs. A setting the checkpoint does not
        record did not exist when it was written: it ran with that setting's default."""
        defaults = {field.name: field.default for field in dataclasses.fields(ExperimentConfig)}
        differences = [f"{key} {saved.get(key, defaults.get(key))!r} (checkpoint) vs "
                       f"{value!r} (now)" for key, value in self.fingerprint.items()
                       if saved.get(key, defaults.get(key)) != value]
        if differences:
            raise UserError(
                f"the checkpoint in {self.directory} was written by a different run: "
                f"{'; '.join(differences)}. Use --noresume to start this run afresh, or another "
                f"--output_dir.")

    def wait(self) -> None:
        """Return once every checkpoint saved so far is written (or raise
        :class:`CheckpointWriteError`)."""
        if self._failed:
            return
        with self._write_failures():
            self._manager.wait_until_finished()

    def close(self) -> None:
        """Finish the writes in flight and stop Orbax's threads; after a failed write, quietly."""
        if not self._failed:
            with self._write_failures():
                self._manager.close()
            return
        with contextlib.suppress(Exception):
            self._manager.close()
