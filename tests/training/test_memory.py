"""The memory check before the first step: XLA's buffer plan against the memory left."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from jaxcolor.training import memory


def test_a_step_needs_its_temporaries_and_outputs_beyond_its_arguments():
    step = jax.jit(lambda x: x @ x.T).lower(jnp.ones((512, 64))).compile()
    need = memory.step_bytes(step)
    assert need is not None and need >= 512 * 512 * 4  # the (512, 512) product


@pytest.mark.slow  # a new Python process
def test_host_free_memory_respects_the_address_space_limit():
    free = memory.host_free_bytes()
    assert free is not None and free > 0
    code = ("import resource; from jaxcolor.training import memory; "
            "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY)); "
            "print(memory.host_free_bytes())")
    limited = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout)
    assert 0 < limited < 3 << 30


@pytest.mark.slow
def test_a_run_whose_step_cannot_fit_is_refused_in_one_line_before_it_trains(tmp_path):
    """3,000 colour classes at batch 100 need gigabytes per step; under a 7 GiB address-space
    limit (``ulimit -v``, as on shared clusters) the run stops before its first step."""
    script = Path(__file__).parents[2] / "experiments" / "q2_classification.py"
    limited = ("import resource, runpy, sys; "
               "resource.setrlimit(resource.RLIMIT_AS, (7 << 30, 7 << 30)); "
               "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run(
        [sys.executable, "-c", limited, str(script), "--source=synthetic", "--num_colours=3000",
         "--epochs=1", f"--output_dir={tmp_path}"], capture_output=True, text=True,
        timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: one train step needs ")
    assert "lower --batch_size, --num_colours or --num_filters" in result.stderr
    assert "epoch   1/1" not in result.stdout
