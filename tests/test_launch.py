"""launch/tpu_vm.py --dry_run prints the gcloud commands of every step and runs nothing."""

import shlex
import subprocess
import sys

from conftest import REPO


def test_dry_run_prints_every_gcloud_step():
    result = subprocess.run(
        [sys.executable, str(REPO / "launch" / "tpu_vm.py"), "all", "--name=colour",
         "--zone=us-central2-b", "--accelerator_type=v4-32", "--dry_run",
         "--tfds_data_dir=gs://bucket/tfds", "--", "experiments/q3_unet.py", "--batch_sizes=256"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert all(line.startswith("+ ") for line in result.stdout.splitlines())
    commands = [shlex.split(line[2:]) for line in result.stdout.splitlines()]
    gcloud = [c for c in commands if c[0] == "gcloud"]
    assert all(c[1:4] == ["compute", "tpus", "tpu-vm"] and "--zone=us-central2-b" in c
               for c in gcloud)
    assert gcloud[0][4:] == ["create", "colour", "--accelerator-type=v4-32",
                             "--version=tpu-ubuntu2204-base", "--zone=us-central2-b"]
    ssh = [c for c in gcloud if c[4] == "ssh"]
    assert len(ssh) == 3 and all("--worker=all" in c for c in ssh)  # unpack, install, run
    assert "pip install -U 'jax[tpu]'" in ssh[1][7]
    assert ssh[2][7] == ("--command=cd jaxcolor && TFDS_DATA_DIR=gs://bucket/tfds python "
                         "experiments/q3_unet.py --batch_sizes=256 --distributed")
    assert gcloud[-2][4:9] == \
        ["scp", "--recurse", "colour:~/jaxcolor/results/*", "results", "--worker=0"]
    assert gcloud[-1][4:6] == ["delete", "colour"]
