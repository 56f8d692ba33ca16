"""Run a jaxcolor experiment on a Cloud TPU VM (one host or a multi-host pod slice) from a laptop
with the ``gcloud`` CLI: create the VM, put the project on every worker, install, run on all
workers at once (JAX's multi-controller runtime; ``--distributed``), copy results back, delete.

    python launch/tpu_vm.py all --name=colour --zone=us-central2-b \\
        --accelerator_type=v4-32 --tfds_data_dir=gs://my-bucket/tensorflow_datasets \\
        -- experiments/q3_unet.py --batch_sizes=256
    python launch/tpu_vm.py all ... --dry_run     # print every command, run nothing

Steps can be run one at a time: create, upload, install, run, fetch, delete.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

STEPS = ("create", "upload", "install", "run", "fetch", "delete")
REMOTE_DIR = "jaxcolor"
ARCHIVE = "/tmp/jaxcolor.tar.gz"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=(*STEPS, "all"))
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True, help="e.g. us-central2-b")
    parser.add_argument("--project", default=None, help="GCP project (default: gcloud's)")
    parser.add_argument("--accelerator_type", default="v4-8", help="e.g. v4-8, v4-32, v5litepod-8")
    parser.add_argument("--runtime_version", default="tpu-ubuntu2204-base")
    parser.add_argument("--spot", action="store_true", help="create a Spot VM")
    parser.add_argument("--repo", default=None,
                        help="git URL to clone on the workers (default: upload this checkout)")
    parser.add_argument("--tfds_data_dir", default=None,
                        help="prepared TFDS data, e.g. gs://bucket/tensorflow_datasets")
    parser.add_argument("--results", default="results", help="local folder for fetched results")
    parser.add_argument("--dry_run", action="store_true", help="print the commands only")
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.experiment = argv[cut + 1:] or ["experiments/q3_unet.py"]  # script and its flags
    return args


def tpu(args: argparse.Namespace, *words: str) -> list[str]:
    command = ["gcloud", "compute", "tpus", "tpu-vm", *words, f"--zone={args.zone}"]
    return command + ([f"--project={args.project}"] if args.project else [])


def on_all_workers(args: argparse.Namespace, script: str) -> list[str]:
    return tpu(args, "ssh", args.name, "--worker=all", f"--command={script}")


def commands(step: str, args: argparse.Namespace) -> list[list[str]]:
    """The shell commands of one step."""
    if step == "create":
        return [tpu(args, "create", args.name, f"--accelerator-type={args.accelerator_type}",
                    f"--version={args.runtime_version}", *(["--spot"] if args.spot else []))]
    if step == "upload":
        if args.repo:
            return [on_all_workers(args, f"rm -rf {REMOTE_DIR} && git clone --depth=1 "
                                         f"{shlex.quote(args.repo)} {REMOTE_DIR}")]
        root = Path(__file__).resolve().parents[1]
        return [["git", "-C", str(root), "archive", "--format=tar.gz", f"--output={ARCHIVE}",
                 "HEAD"],
                tpu(args, "scp", ARCHIVE, f"{args.name}:~/", "--worker=all"),
                on_all_workers(args, f"rm -rf {REMOTE_DIR} && mkdir {REMOTE_DIR} && "
                                     f"tar -xzf jaxcolor.tar.gz -C {REMOTE_DIR}")]
    if step == "install":
        return [on_all_workers(args, f"cd {REMOTE_DIR} && pip install -U 'jax[tpu]' && "
                                     f"pip install -e .")]
    if step == "run":
        env = f"TFDS_DATA_DIR={shlex.quote(args.tfds_data_dir)} " if args.tfds_data_dir else ""
        script = " ".join(shlex.quote(word) for word in args.experiment)
        return [on_all_workers(args, f"cd {REMOTE_DIR} && {env}python {script} --distributed")]
    if step == "fetch":  # only process 0 writes tables and figures
        return [["mkdir", "-p", args.results],
                tpu(args, "scp", "--recurse", f"{args.name}:~/{REMOTE_DIR}/results/*",
                    args.results, "--worker=0")]
    if step == "delete":
        return [tpu(args, "delete", args.name, "--quiet")]
    raise ValueError(step)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for step in STEPS if args.step == "all" else (args.step,):
        for command in commands(step, args):
            print("+ " + shlex.join(command), flush=True)
            if not args.dry_run and subprocess.run(command).returncode != 0:
                print(f"error: step '{step}' failed: {shlex.join(command)}", file=sys.stderr)
                if step != "create":
                    print(f"the VM still exists; delete it with: python launch/tpu_vm.py delete "
                          f"--name={args.name} --zone={args.zone}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
