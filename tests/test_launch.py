"""launch/tpu_vm.py against a fake ``gcloud`` on PATH that records its calls and fails where a
test says; --dry_run prints the commands and runs nothing. No cloud account is involved."""

import json
import os
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

FAKE_GCLOUD = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GCLOUD_LOG"]) as log:
    earlier = [json.loads(line)[3] for line in log]  # the verbs called so far
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
fail = os.environ.get("FAKE_GCLOUD_FAIL")
if fail and fail in " ".join(args):
    sys.exit(1)
if "describe" in args:  # a VM exists once created, or as FAKE_GCLOUD_EXISTING until deleted
    if "create" in earlier:
        print("ACTIVE" if "queued-resources" in args else "READY")
    elif os.environ.get("FAKE_GCLOUD_EXISTING") and "delete" not in earlier:
        print(os.environ["FAKE_GCLOUD_EXISTING"])
    else:
        sys.exit(1)
elif any(a.startswith("--command=") and "jaxcolor-run.status ]" in a for a in args):
    print(os.environ.get("FAKE_GCLOUD_STATUS", "finished, exit status 0"))
    print("epochs logged: 25")
'''
COMMON = ["--name=colour", "--zone=us-central2-b", "--poll=0"]


@pytest.fixture
def gcloud(tmp_path):
    """Runs the launcher with the fake gcloud first on PATH; returns (result, calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(*argv, fail=None, status=None, existing=None):
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "FAKE_GCLOUD_LOG": str(log)}
        env.update({"FAKE_GCLOUD_FAIL": fail} if fail else {})
        env.update({"FAKE_GCLOUD_STATUS": status} if status else {})
        env.update({"FAKE_GCLOUD_EXISTING": existing} if existing else {})
        log.write_text("")
        result = subprocess.run([sys.executable, str(REPO / "launch" / "tpu_vm.py"), *COMMON,
                                 f"--results={tmp_path / 'results'}", *argv],
                                capture_output=True, text=True, timeout=120, env=env)
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return result, calls

    return run


def verbs(calls):
    """Each call's gcloud verb: create, scp, ssh, delete, … (queued-resources: its action)."""
    return [call[3] if call[2] == "tpu-vm" else f"queued-{call[3]}" for call in calls]


def test_all_runs_detached_waits_fetches_and_deletes(gcloud):
    result, calls = gcloud("all", "--", "experiments/q3_unet.py", "--batch_sizes=256")
    assert result.returncode == 0, result.stderr
    assert verbs(calls) == ["describe", "create", "scp", "ssh", "ssh", "ssh", "ssh", "scp", "scp",
                            "delete"]
    start = next(a for a in calls[5] if a.startswith("--command="))  # the start step's
    assert "setsid nohup bash -c" in start and "> ~/jaxcolor-run.log 2>&1 < /dev/null &" in start
    assert "experiments/q3_unet.py --batch_sizes=256 --distributed" in start
    assert "echo $? > ~/jaxcolor-run.status" in start


def test_a_failed_step_deletes_what_all_created(gcloud):
    result, calls = gcloud("all", fail="pip install")
    assert result.returncode == 1
    assert verbs(calls)[-1] == "delete"
    assert len(result.stderr.strip().splitlines()) == 1
    assert "error: step 'install' failed" in result.stderr
    assert "deleted the VM colour this command created" in result.stderr
    assert "Traceback" not in result.stderr


def test_keep_keeps_the_vm_and_prints_how_to_delete_it(gcloud):
    result, calls = gcloud("all", "--keep", fail="pip install")
    assert result.returncode == 1 and "delete" not in verbs(calls)
    assert ("kept (--keep): delete it with: gcloud compute tpus tpu-vm delete colour --quiet "
            "--zone=us-central2-b") in result.stderr


def test_a_refused_create_claims_no_vm(gcloud):
    result, calls = gcloud("all", fail="create")
    assert result.returncode == 1 and verbs(calls) == ["describe", "create"]
    assert "no VM was created" in result.stderr and "still exist" not in result.stderr


def test_a_failed_experiment_is_fetched_before_the_vm_goes(gcloud):
    result, calls = gcloud("all", status="finished, exit status 1")
    assert result.returncode == 1
    assert verbs(calls)[-4:] == ["ssh", "scp", "scp", "delete"]  # wait, fetch ×2, delete
    assert "the experiment failed (finished, exit status 1)" in result.stderr


def test_after_a_preemption_the_same_command_replaces_the_vm(gcloud):
    result, calls = gcloud("all", "--spot", existing="PREEMPTED")
    assert result.returncode == 0, result.stderr
    assert verbs(calls)[:3] == ["describe", "delete", "create"]
    assert "exists but is PREEMPTED (preempted?): deleting it first" in result.stdout


def test_a_running_vm_is_used_and_a_failure_then_names_it(gcloud):
    result, calls = gcloud("all", existing="READY", fail="pip install")
    assert result.returncode == 1 and "create" not in verbs(calls)
    assert "the VM colour exists (READY): using it" in result.stdout
    assert "delete" not in verbs(calls)  # not this command's to delete
    assert "the VM colour may still exist: delete it with: gcloud" in result.stderr


def test_status_and_logs_read_the_detached_run(gcloud):
    result, calls = gcloud("status")
    assert result.returncode == 0 and "epochs logged: 25" in result.stdout
    assert "--worker=all" in calls[0]
    result, calls = gcloud("logs")
    assert result.returncode == 0
    assert calls[0][-3:-1] == ["--worker=0", "--command=tail -n 50 -F ~/jaxcolor-run.log"]


def test_spot_through_queued_resources(gcloud):
    result, calls = gcloud("all", "--spot", "--queued")
    assert result.returncode == 0, result.stderr
    assert verbs(calls)[:3] == ["queued-describe", "queued-create", "queued-describe"]
    assert "--spot" in calls[1] and "--node-id=colour" in calls[1]
    assert calls[-1][2:5] == ["queued-resources", "delete", "colour"] and "--force" in calls[-1]


def test_dry_run_prints_every_gcloud_step_and_runs_nothing():
    result = subprocess.run(
        [sys.executable, str(REPO / "launch" / "tpu_vm.py"), "all", "--name=colour",
         "--zone=us-central2-b", "--accelerator_type=v4-32", "--dry_run",
         "--tfds_data_dir=gs://bucket/tfds", "--", "experiments/q3_unet.py", "--batch_sizes=256"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("+ ") for line in result.stdout.splitlines())
    commands = [shlex.split(line[2:]) for line in result.stdout.splitlines()]
    gcloud = [c for c in commands if c[0] == "gcloud"]
    assert gcloud[0][4:6] == ["describe", "colour"]
    assert gcloud[1][4:] == ["create", "colour", "--accelerator-type=v4-32",
                             "--version=tpu-ubuntu2204-base", "--zone=us-central2-b"]
    ssh = [c for c in gcloud if c[4] == "ssh"]
    assert len(ssh) == 4  # unpack, install, start, wait's status
    assert "TFDS_DATA_DIR=gs://bucket/tfds python experiments/q3_unet.py" in ssh[2][7]
    assert gcloud[-1][4:6] == ["delete", "colour"]


SKYPILOT_TASK_KEYS = {"name", "workdir", "num_nodes", "resources", "envs", "secrets",
                      "file_mounts", "setup", "run", "config"}
SKYPILOT_RESOURCE_KEYS = {"infra", "accelerators", "accelerator_args", "use_spot",
                          "job_recovery", "cpus", "memory", "disk_size", "region", "zone"}


@pytest.mark.parametrize("name", ["tpu_pod.yaml", "gpu.yaml"])
def test_skypilot_tasks_are_valid_and_resume_from_the_bucket(name):
    """SkyPilot's own loader where it is installed (not in CI: it is not a test dependency;
    checked with SkyPilot 0.14.1 in a separate environment); here the keys its task schema
    allows, and what the run must do."""
    yaml = pytest.importorskip("yaml")
    path = REPO / "launch" / "skypilot" / name
    task = yaml.safe_load(path.read_text())
    assert set(task) <= SKYPILOT_TASK_KEYS and set(task["resources"]) <= SKYPILOT_RESOURCE_KEYS
    assert task["resources"]["use_spot"] is True
    assert task["resources"]["job_recovery"]["strategy"] == "FAILOVER"
    assert "pip install -e \".[cloud]\"" in task["setup"]
    assert "--distributed" in task["run"]
    assert "--checkpoint_dir=$BUCKET/jaxcolor/checkpoints" in task["run"]
    try:
        import sky
    except ImportError:
        return
    assert sky.Task.from_yaml(str(path)).num_nodes == task["num_nodes"]


def test_slurm_script_is_valid_bash_that_requeues_and_resumes():
    path = REPO / "launch" / "slurm" / "jaxcolor.sbatch"
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0
    text = path.read_text()
    assert "#SBATCH --requeue" in text and "#SBATCH --ntasks-per-node=1" in text
    assert "--distributed" in text and "--checkpoint_dir=" in text
