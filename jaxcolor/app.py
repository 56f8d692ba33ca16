"""The entry point of every script: absl's app with one ``error: …`` line (exit status 2) for
a UserError instead of a traceback, list flags parsed with one-line errors, and JAX's persistent
compilation cache."""

from __future__ import annotations

import errno
import gc
import hashlib
import logging
import os
import platform
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jax
from absl import app, flags
from absl import logging as absl_logging

from jaxcolor.errors import RunInterruptedError, UserError

FLAGS = flags.FLAGS


def parse_list(flag: str, text: str, kind: type = int, allow_zero: bool = False) -> list:
    """``"100,50"`` → [100, 50] (``kind`` int, float or str; numbers positive, or ≥ 0 with
    ``allow_zero``), or a UserError naming the flag."""
    try:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--{flag}={text!r} must be a comma-separated list of "
                        f"{kind.__name__}s.") from None
    if not values:
        raise UserError(f"--{flag}={text!r} must list at least one value.")
    if kind is not str and (min(values) < 0 or (min(values) == 0 and not allow_zero)):
        raise UserError(f"--{flag}={text!r} must list "
                        f"{'numbers ≥ 0' if allow_zero else 'positive numbers'}.")
    return values


def define_as_script_flags(define: Callable[[], None]) -> None:
    """Call ``define()`` (flag definitions) and register the flags it defines as key flags of
    the script being run, so that its ``--helpshort`` lists them beside its own."""
    before = set(FLAGS)
    define()
    for name in sorted(set(FLAGS) - before):
        FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])


INTERRUPTED_STATUS = 130  # a shell's status for a command stopped by SIGINT
# Storage that refuses a write: full, quota, permission, read-only.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS)
STOP_MESSAGE = ("interrupted; the same command goes on from what is saved (checkpoints and "
                "finished runs in the output folder).")
# After a stop signal the main thread has this long to stop by itself: Python sees a signal only
# between bytecodes, not while XLA compiles or runs a step, nor while exit waits for a download
# thread. A preemptible VM allows 30 s.
STOP_GRACE_SECONDS = 10.0
_stop_reported = threading.Event()  # the main thread has printed its stop line
_stop_heard = threading.Event()  # a stop signal reached the main thread's handler


def run_main(main: Callable[[list[str]], None], argv: list[str]) -> int:
    """Call ``main(argv)`` (the flags already parsed); a UserError, or storage that refuses a
    write (:data:`WRITE_ERRNOS`), becomes one ``error: …`` line on stderr and exit status 2, a
    stop (Ctrl-C, SIGTERM) one line saying what is kept
    and status 130."""
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        print(f"error: cannot write {err.filename or 'a file'}: {err.strerror}. What was "
              "written before is kept (finished runs' results, checkpoints); once it can be "
              "written, the same command goes on.", file=sys.stderr, flush=True)
        return 2
    except RunInterruptedError as err:
        print(err, file=sys.stderr, flush=True)
        _stop_reported.set()
        return INTERRUPTED_STATUS
    except KeyboardInterrupt:
        print(STOP_MESSAGE, file=sys.stderr, flush=True)
        _stop_reported.set()
        return INTERRUPTED_STATUS
    return 0


def _orbax_errors_left_out(record: logging.LogRecord) -> bool:
    return f"{os.sep}orbax{os.sep}" not in record.pathname or record.levelno >= logging.CRITICAL


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C, and SIGTERM (what schedulers and preemptible VMs send) handled as Ctrl-C; noted
    first, since Python loses the KeyboardInterrupt where it is raised inside a garbage-collector
    callback (:func:`run` still ends the run as stopped)."""
    _stop_heard.set()
    raise KeyboardInterrupt


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def watch_stop_signals(grace_seconds: float = STOP_GRACE_SECONDS) -> None:
    """Make every stop take effect within ``grace_seconds`` (at once on a second signal): a
    watchdog thread hears each signal through Python's wakeup file descriptor, which the
    signal's C handler writes even while the main thread is blocked, and ends the process with
    the stop line and status 130 if the main thread has not. What is saved stays saved:
    checkpoints are renamed into place only when complete."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    stops = {int(number) for number in STOP_SIGNALS}

    def watch() -> None:
        while os.read(read_end, 1)[0] not in stops:
            pass
        deadline = time.monotonic() + grace_seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([read_end], [], [], left)
            if ready and os.read(read_end, 1)[0] in stops:
                break  # stopped again: the user does not want to wait
        if not _stop_reported.is_set():
            print(STOP_MESSAGE, file=sys.stderr, flush=True)
        os._exit(INTERRUPTED_STATUS)

    threading.Thread(target=watch, daemon=True, name="stop-watchdog").start()


COMPILATION_CACHE_ENV = "JAXCOLOR_COMPILATION_CACHE"
# Programs that compile faster than this are not written to the cache (eager one-op programs).
CACHE_MIN_COMPILE_SECONDS = 0.1


def _cpu_info(prefixes: tuple[str, ...]) -> str:
    """The first /proc/cpuinfo line that starts with one of ``prefixes`` ("" if none)."""
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith(prefixes)), "")
    except OSError:
        return ""


def _machine_key() -> str:
    """The CPU's architecture and feature flags, hashed: XLA:CPU builds executables for the
    host's instructions, so machines that share a home folder keep separate caches."""
    features = _cpu_info(("flags", "Features")) or platform.processor()
    return hashlib.sha256(f"{platform.machine()} {features}".encode()).hexdigest()[:12]


def use_compilation_cache() -> None:
    """JAX's persistent compilation cache in ``~/.cache/jaxcolor/jax-<machine>``: a job run
    again compiles (almost) nothing (BENCHMARKS.md). JAX's own ``JAX_COMPILATION_CACHE_DIR``
    wins when set; ``JAXCOLOR_COMPILATION_CACHE=0`` turns it off, ``=1`` on. Off by default on
    Intel CPUs: there XLA:CPU (jaxlib 0.9–0.10) rejects its own cached executables with error
    lines (jax-ml/jax#38445: it takes LLVM's tuning attributes for missing CPU features)."""
    wanted = os.environ.get(COMPILATION_CACHE_ENV)
    if os.environ.get("JAX_COMPILATION_CACHE_DIR") or wanted == "0" or (
            wanted != "1" and "GenuineIntel" in _cpu_info(("vendor_id",))):
        return
    folder = Path.home() / ".cache" / "jaxcolor" / f"jax-{_machine_key()}"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)


def run(main: Callable[[list[str]], None]) -> None:
    """``absl.app.run`` with :func:`run_main` (a UserError or a stop is one line, no
    traceback; SIGTERM stops like Ctrl-C; every stop within seconds, :func:`watch_stop_signals`)
    and :func:`use_compilation_cache`."""

    def guarded(argv: list[str]) -> None:
        if not FLAGS["verbosity"].present:  # Orbax logs every checkpoint step at INFO
            absl_logging.set_verbosity(absl_logging.WARNING)
            # and a failed write with tracebacks from each of its threads; the failure
            # reaches jaxcolor as an exception and is said in one line.
            logging.getLogger("absl").addFilter(_orbax_errors_left_out)
        status = run_main(main, argv)
        if status == 0 and _stop_heard.is_set() and not _stop_reported.is_set():
            # Python lost the stop's KeyboardInterrupt (raised inside a garbage-collector
            # callback, it is only an "Exception ignored"): the stop still ends the run.
            print(STOP_MESSAGE, file=sys.stderr, flush=True)
            status = INTERRUPTED_STATUS
        gc.freeze()  # see below: the interpreter's teardown then skips its collections
        sys.exit(status)

    # jax logs at INFO that it found no TPU on every CPU/GPU start; keep the console for results.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    use_compilation_cache()
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (nohup, &)
        signal.signal(signal.SIGINT, _interrupt)
    watch_stop_signals()
    # The imported modules' objects live as long as the process: frozen, the garbage collector
    # stops rescanning them while JAX traces and at exit (the start-up of BENCHMARKS.md, "The
    # whole job, cold").
    gc.freeze()
    app.run(guarded)
