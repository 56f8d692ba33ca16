"""The compile options degrade to what a jaxlib knows."""

from jaxcolor.cpu import compiler


def test_options_a_jaxlib_lacks_are_left_out(monkeypatch):
    """A jaxlib without the LLVM-emitter option (newer XLA may drop it) still gets the other
    options; one without any of them gets XLA's defaults."""
    monkeypatch.setattr(compiler, "LLVM_EMITTERS", {"xla_cpu_no_such_option": False})
    assert compiler._fastest_known(compiler.INIT_CPU_OPTIONS, "cpu") == compiler.INIT_CPU_OPTIONS
    assert compiler._fastest_known({"xla_cpu_no_such_option_either": 1}, "cpu") is None
    assert compiler._fastest_known(compiler.INIT_CPU_OPTIONS, "gpu") is None
