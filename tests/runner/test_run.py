import jax.numpy as jnp
import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.cpu import native
from jaxcolor.runner.run import precision_here

BFLOAT16 = ExperimentConfig("x", precision="bfloat16")


def test_bfloat16_without_bfloat16_kernels_trains_in_float32_with_one_note(monkeypatch):
    """Where no bfloat16 kernels run (here: the native kernels switched off, as on a CPU
    without AVX512_BF16) the run trains in float32, said once."""
    monkeypatch.setenv(native.DISABLE_ENV, "0")
    lines = []
    assert precision_here(BFLOAT16, lines.append) == BFLOAT16.replace(precision="float32")
    assert len(lines) == 1 and lines[0].startswith("note: this CPU has no bfloat16")
    assert precision_here(BFLOAT16.replace(conv_impl="xla"), lines.append).precision == "bfloat16"


@pytest.mark.skipif(not native.runs(jnp.bfloat16), reason="needs AVX512_BF16")
def test_bfloat16_with_its_kernels_is_kept():
    lines = []
    assert precision_here(BFLOAT16, lines.append) == BFLOAT16 and lines == []
