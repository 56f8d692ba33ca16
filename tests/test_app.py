"""The scripts' entry point: JAX's persistent compilation cache, per machine."""

import gc
import sys
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
    try:
        with pytest.raises(SystemExit) as stop:
            app.run(main)
    finally:
        gc.unfreeze()
    assert stop.value.code == 2 and frozen_in_main[0] > 0
