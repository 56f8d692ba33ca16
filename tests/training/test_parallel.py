"""Data parallelism: on 4 forced CPU devices (in one subprocess, because the device count is
fixed when JAX starts), and two processes joined by jax.distributed."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from jaxcolor.training import parallel

FOUR_DEVICES = {"XLA_FLAGS": f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=4",
                "JAX_PLATFORMS": "cpu"}
TINY = ["--source=synthetic", "--epochs=2", "--num_filters=4", "--num_colours=6",
        "--num_samples=2"]

SHARDED_STEP_EQUALS_ONE_DEVICE = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh
    from jaxcolor.training import parallel
    from jaxcolor.training import state as train_state
    from jaxcolor.training import steps as train
    from jaxcolor.models import ModelSpec, build_model
    from jaxcolor.objectives import CLASSIFICATION

    assert jax.device_count() == 4
    rng = np.random.default_rng(0)
    inputs = rng.random((16, 32, 32, 1), np.float32)
    targets = rng.integers(0, 6, (16, 32, 32)).astype(np.int32)
    model = build_model(ModelSpec("unet", num_filters=4, kernel=3, num_outputs=6))
    tx = optax.sgd(0.1)  # Adam's first step is ±lr wherever a gradient is ~0: float noise
    state = train_state.create_train_state(model, tx, jnp.zeros((1, 32, 32, 1)), jax.random.key(0))

    def one_step(mesh, layout_inputs, layout_targets, order):
        step = train.make_train_step(model, tx, CLASSIFICATION, mesh)
        return step(jax.tree.map(jnp.copy, state), layout_inputs, layout_targets, order, 0)

    # The same global batch of 16 (one host: rows (1, 16), order (1, 1 batch, 16)), split
    # over 4 devices or on one.
    order = jax.random.permutation(jax.random.key(1), 16)[None, None, :]
    sharded = one_step(parallel.data_mesh(), inputs[None], targets[None], order)
    one = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), parallel.BATCH_AXES)
    single = one_step(one, inputs[None], targets[None], order)
    assert all(len(leaf.sharding.device_set) == 4 for leaf in jax.tree.leaves(sharded[0].params))
    worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in
                zip(jax.tree.leaves(sharded), jax.tree.leaves(single))
                if not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key))
    print("max difference", worst)
    assert worst < 1e-5, worst
""")


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """One process with 4 forced CPU devices (the device count is fixed when JAX starts) runs
    the sharded-step check, then q3 and a q2 with a batch that does not divide over them (in
    that process, as the tests run scripts): their results for the tests below."""
    out = tmp_path_factory.mktemp("four_devices")
    code = SHARDED_STEP_EQUALS_ONE_DEVICE + textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(REPO / "tests")!r})
        from conftest import run_script
        q3 = run_script("q3_unet", *{TINY!r}, "--batch_sizes=32", "--output_dir={out / 'q3'}")
        odd = run_script("q2_classification", *{TINY!r}, "--batch_size=30",
                         "--output_dir={out / 'odd'}")
        threads = 0
        for task in os.listdir("/proc/self/task"):  # threads come and go while they are read
            try:
                threads += "XLAEigen" in open(f"/proc/self/task/{{task}}/comm").read()
            except FileNotFoundError:
                pass
        print(json.dumps({{"q3": q3.__dict__, "odd_batch": odd.__dict__,
                          "xla_threads": threads}}))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **FOUR_DEVICES}, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout.splitlines()[0], json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow
@pytest.mark.xdist_group("four_devices")
def test_sharded_train_step_equals_the_single_device_step(four_devices):
    _, first_line, _ = four_devices
    assert first_line.startswith("max difference")


@pytest.mark.slow
@pytest.mark.xdist_group("four_devices")
def test_script_runs_end_to_end_on_four_devices(four_devices):
    out, _, results = four_devices
    assert results["q3"]["returncode"] == 0, results["q3"]["stderr"]
    rows = json.loads((out / "q3" / "results.json").read_text())
    assert len(rows[0]["history"]) == 2 and 0 < rows[0]["val_accuracy"] < 100
    assert rows[0]["history"][1]["train_loss"] < rows[0]["history"][0]["train_loss"]


@pytest.mark.slow
@pytest.mark.xdist_group("four_devices")
def test_forced_devices_beyond_the_cores_get_two_xla_threads_each(four_devices):
    """With one thread per forced device, a loaded 2-core machine aborted in XLA's all-reduce
    rendezvous ("expected 4 threads to join, only 3 arrived")."""
    _, _, results = four_devices
    if len(os.sched_getaffinity(0)) >= 4:
        pytest.skip("as many cores as forced devices: XLA's own pool size is kept")
    assert results["xla_threads"] == 2 * 4


def test_the_thread_pool_is_sized_only_for_forced_devices_beyond_the_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    forced = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    for environ, expected in [(dict(forced), "8"), ({**forced, "PJRT_NPROC": "3"}, "3"),
                              ({"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, None),
                              ({}, None)]:
        parallel.size_thread_pool_for_forced_devices(environ)
        assert environ.get("PJRT_NPROC") == expected, environ


@pytest.mark.slow
@pytest.mark.xdist_group("four_devices")
def test_batch_that_does_not_divide_over_the_devices_is_one_clear_line(four_devices):
    _, _, results = four_devices
    result = results["odd_batch"]
    assert result["returncode"] == 2 and "Traceback" not in result["stderr"]
    errors = [line for line in result["stderr"].splitlines() if line.startswith("error:")]
    assert errors == ["error: --batch_size=30 does not divide over the 4 devices; use a "
                      "multiple of 4, e.g. 28 or 32."]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def launch_two_processes(out):
    """Both processes of a 2-process --distributed q2 run: [(returncode, stdout, stderr)]. (If
    one process fails early, the other waits in jax.distributed's start-up or a collective:
    that is what the timeout catches.)"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
           "JAX_COORDINATOR_ADDRESS": f"localhost:{free_port()}", "JAX_NUM_PROCESSES": "2"}
    # Output goes to files, not pipes: waiting on one process while the other's unread pipe
    # fills (e.g. with start-up retry logs) would block that one and hang the pair.
    logs = [[out.parent / f"{out.name}.{index}.{stream}" for stream in ("stdout", "stderr")]
            for index in range(2)]
    processes = []
    for index, (stdout_path, stderr_path) in enumerate(logs):
        with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
            processes.append(subprocess.Popen(
                [sys.executable, str(REPO / "experiments" / "q2_classification.py"),
                 "--distributed", *TINY, "--batch_size=32", f"--output_dir={out}"],
                stdout=stdout, stderr=stderr, cwd=REPO,
                env={**env, "JAX_PROCESS_ID": str(index)}))
    try:
        for process in processes:
            process.wait(timeout=180)  # a good launch takes ~12 s
    except subprocess.TimeoutExpired:
        pass  # killed below: a non-zero status, reported with both processes' output
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return [(process.returncode, *(path.read_text() for path in paths))
            for process, paths in zip(processes, logs, strict=True)]


@pytest.mark.slow
def test_two_processes_train_one_model_and_only_process_0_writes(tmp_path):
    """The multi-controller path on one machine: 2 CPU processes joined by
    jax.distributed (gloo collectives), each with its half of the images. Launched again on
    the same folder, both resume from process 0's checkpoint (its data digest covers both
    shares, so process 1 accepts it). Only process 0 prints."""
    out = tmp_path / "out"
    results = launch_two_processes(out)
    for code, _, stderr in results:
        assert code == 0, stderr[-2000:]
    (_, first, _), (_, second, _) = results
    losses = [line.split()[3] for line in first.splitlines() if line.startswith("epoch")]
    assert len(losses) == 2
    assert "data: 128 train / 32 test" in first  # its half of the images
    assert "wrote" in first
    assert not [line for line in second.splitlines() if not line.startswith("[Gloo]")]
    rows = json.loads((out / "results.json").read_text())
    assert f"{rows[0]['train_loss']:.4f}" == losses[-1]
    again = launch_two_processes(out)
    for code, _, stderr in again:
        assert code == 0, stderr[-2000:]
    assert "resuming after epoch 2" in again[0][1] and "resuming" not in again[1][1]
