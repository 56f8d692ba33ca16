"""The scripts' entry point: JAX's persistent compilation cache, per machine; stops."""

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxcolor import app
from jaxcolor.errors import UserError


@pytest.fixture
def config_updates(monkeypatch, tmp_path):
    """The jax.config updates use_compilation_cache makes (recorded, not applied), HOME at
    tmp_path and no JAX cache folder of the tests'."""
    updates = {}
    monkeypatch.setattr(app.jax.config, "update", lambda name, value: updates.update({name: value}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv(app.COMPILATION_CACHE_ENV, raising=False)
    return updates


def test_the_compilation_cache_is_kept_per_machine_in_the_home_cache(config_updates, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(app, "_cpu_info", lambda prefixes: "vendor_id : AuthenticAMD"
                        if "vendor_id" in prefixes else "flags : fpu sse2 avx2")
    app.use_compilation_cache()
    folder = Path(config_updates["jax_compilation_cache_dir"])
    assert folder.parent == tmp_path / ".cache" / "jaxcolor"
    assert folder.name == f"jax-{app._machine_key()}" and len(app._machine_key()) == 12
    assert config_updates["jax_persistent_cache_min_compile_time_secs"] == \
        app.CACHE_MIN_COMPILE_SECONDS


def test_jax_own_cache_setting_wins_and_the_cache_can_be_switched_off(config_updates,
                                                                      monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    app.use_compilation_cache()
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv(app.COMPILATION_CACHE_ENV, "0")
    app.use_compilation_cache()
    assert config_updates == {}


def test_the_cache_is_off_by_default_on_intel_cpus_unless_asked_for(config_updates, monkeypatch):
    """jax-ml/jax#38445: XLA:CPU rejects its own cached executables there, with error lines."""
    monkeypatch.setattr(app, "_cpu_info", lambda prefixes: "vendor_id : GenuineIntel")
    app.use_compilation_cache()
    assert config_updates == {}
    monkeypatch.setenv(app.COMPILATION_CACHE_ENV, "1")
    app.use_compilation_cache()
    assert "jax_compilation_cache_dir" in config_updates


def test_a_stop_outside_training_is_one_line_and_status_130(capsys):
    def stopped(argv):
        raise KeyboardInterrupt

    assert app.run_main(stopped, []) == app.INTERRUPTED_STATUS == 130
    assert capsys.readouterr().err.startswith("interrupted; the same command goes on")


def test_run_freezes_the_imported_objects_and_exits_with_the_status_of_main(config_updates,
                                                                           monkeypatch):
    """app.run hands the garbage collector's objects of the imports to gc.freeze before main
    (it stops rescanning them) and again before exiting (teardown skips them), and exits with
    run_main's status: 2 for a UserError."""
    frozen_in_main = []

    def main(argv):
        frozen_in_main.append(gc.get_freeze_count())
        raise UserError("bad input")

    monkeypatch.setattr(sys, "argv", ["script"])
    monkeypatch.setattr(app.signal, "signal", lambda signum, handler: None)
    monkeypatch.setattr(app, "watch_stop_signals", lambda: None)
    try:
        with pytest.raises(SystemExit) as stop:
            app.run(main)
    finally:
        gc.unfreeze()
    assert stop.value.code == 2 and frozen_in_main[0] > 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.slow
def test_a_stop_during_a_long_step_takes_effect_within_the_grace_time(stop, tmp_path):
    """A real signal while XLA runs a train step that takes far longer than the grace time (a
    wide CNN at a large batch): the process ends within it, with the stop line and status 130,
    instead of when the step returns."""
    script = Path(__file__).parents[1] / "experiments" / "q2_classification.py"
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal
    try:
        process = subprocess.Popen(
            [sys.executable, str(script), "--source=synthetic", "--num_filters=1024",
             "--batch_size=256", "--epochs=1", f"--output_dir={tmp_path}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        for line in process.stdout:
            if line.startswith("compiled train and eval steps"):
                break
        time.sleep(1.0)  # into the first step
        process.send_signal(stop)
        sent = time.monotonic()
        _, stderr = process.communicate(timeout=120)
        waited = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == app.INTERRUPTED_STATUS, stderr
    assert waited < app.STOP_GRACE_SECONDS + 3, waited
    assert stderr.strip().splitlines()[-1] == app.STOP_MESSAGE and "Traceback" not in stderr


CTRL_C_IN_A_GC_CALLBACK = """
import gc, os, signal, sys
from jaxcolor import app

def main(argv):
    fired = []

    def collecting(phase, info):
        if phase == "start" and not fired:
            fired.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # its KeyboardInterrupt is raised in here
            for _ in range(1000):  # (bytecodes for Python to run the handler on)
                pass

    gc.callbacks.append(collecting)
    gc.collect()
    gc.callbacks.remove(collecting)
    print("main returned")

app.run(main)
"""


@pytest.mark.slow  # a new Python process
def test_a_stop_whose_keyboard_interrupt_python_loses_still_ends_the_run():
    """A Ctrl-C whose KeyboardInterrupt is raised inside a garbage-collector callback (JAX has
    one) is only an "Exception ignored": the run still ends with the stop line and status 130
    (seen once in CI: a run stopped after its first epoch finished and exited 0)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal
    try:
        result = subprocess.run([sys.executable, "-c", CTRL_C_IN_A_GC_CALLBACK],
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "JAX_PLATFORMS": "cpu"})
    finally:
        signal.signal(signal.SIGINT, inherited)
    assert "main returned" in result.stdout and "Exception ignored" in result.stderr
    assert result.returncode == app.INTERRUPTED_STATUS, result.stderr
    assert result.stderr.rstrip().endswith(app.STOP_MESSAGE)
