"""Run a jaxcolor experiment on a Cloud TPU VM (one host or a multi-host pod slice) from a laptop
with the ``gcloud`` CLI: create the VM, put the project on every worker, install, start the
experiment detached on all workers at once (JAX's multi-controller runtime; ``--distributed``),
wait for it, copy results and logs back, delete.

    python launch/tpu_vm.py all --name=colour --zone=us-central2-b \\
        --accelerator_type=v4-32 --tfds_data_dir=gs://my-bucket/tensorflow_datasets \\
        -- experiments/q3_unet.py --batch_sizes=256 --checkpoint_dir=gs://my-bucket/ckpt
    python launch/tpu_vm.py all ... --dry_run     # print every command, run nothing

Steps one at a time: create, upload, install, start, status, logs, wait, fetch, delete. The
experiment runs under ``setsid nohup`` with a log per worker (``~/jaxcolor-run.log``), so a
laptop that sleeps or a dropped connection does not stop it: ``status`` says whether it runs
(epochs done, last lines), ``logs`` follows worker 0's log, ``wait`` polls until it ends.
``all`` deletes the VM when a step after ``create`` fails (``--keep`` keeps it and prints the
delete command). ``--spot --queued`` asks for a Spot VM through queued resources. ``create``
uses a running VM of that name and replaces a preempted one, so after a preemption the same
``all`` command runs again and the experiment resumes from its checkpoints when
``--checkpoint_dir`` is on Cloud Storage.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import subprocess
import sys
import time
from pathlib import Path

STEPS = ("create", "upload", "install", "start", "status", "logs", "wait", "fetch", "delete")
ALL = ("create", "upload", "install", "start", "wait", "fetch", "delete")
REMOTE_DIR = "jaxcolor"
ARCHIVE = "/tmp/jaxcolor.tar.gz"
LOG, STATUS = "jaxcolor-run.log", "jaxcolor-run.status"  # in each worker's home


class StepFailedError(Exception):
    """A command of a step exited non-zero."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=(*STEPS, "all"))
    parser.add_argument("--name", required=True, help="TPU VM name")
    parser.add_argument("--zone", required=True, help="e.g. us-central2-b")
    parser.add_argument("--project", default=None, help="GCP project (default: gcloud's)")
    parser.add_argument("--accelerator_type", default="v4-8", help="e.g. v4-8, v4-32, v5litepod-8")
    parser.add_argument("--runtime_version", default="tpu-ubuntu2204-base")
    parser.add_argument("--spot", action="store_true", help="a Spot VM (cheaper, preemptible)")
    parser.add_argument("--queued", action="store_true",
                        help="create through queued resources (waits for capacity)")
    parser.add_argument("--repo", default=None,
                        help="git URL to clone on the workers (default: upload this checkout)")
    parser.add_argument("--tfds_data_dir", default=None,
                        help="prepared TFDS data, e.g. gs://bucket/tensorflow_datasets")
    parser.add_argument("--results", default="results", help="local folder for fetched results")
    parser.add_argument("--keep", action="store_true",
                        help="all: keep the VM when a step fails (prints the delete command)")
    parser.add_argument("--poll", type=float, default=60.0, help="wait: seconds between checks")
    parser.add_argument("--dry_run", action="store_true", help="print the commands only")
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.experiment = argv[cut + 1:] or ["experiments/q3_unet.py"]  # script and its flags
    return args


def gcloud(args: argparse.Namespace, *words: str) -> list[str]:
    command = ["gcloud", "compute", "tpus", *words, f"--zone={args.zone}"]
    return command + ([f"--project={args.project}"] if args.project else [])


def tpu(args: argparse.Namespace, *words: str) -> list[str]:
    return gcloud(args, "tpu-vm", *words)


def on_workers(args: argparse.Namespace, script: str, worker: str = "all") -> list[str]:
    return tpu(args, "ssh", args.name, f"--worker={worker}", f"--command={script}")


def delete_command(args: argparse.Namespace) -> list[str]:
    if args.queued:  # the queued resource owns the VM: deleting it deletes both
        return gcloud(args, "queued-resources", "delete", args.name, "--force", "--quiet")
    return tpu(args, "delete", args.name, "--quiet")


def start_script(args: argparse.Namespace) -> str:
    """The experiment detached from the ssh session (``setsid nohup``), its output in
    ``~/LOG`` and its exit status written to ``~/STATUS`` when it ends."""
    env = f"TFDS_DATA_DIR={shlex.quote(args.tfds_data_dir)} " if args.tfds_data_dir else ""
    script = " ".join(shlex.quote(word) for word in args.experiment)
    job = f"cd ~/{REMOTE_DIR} && {env}python {script} --distributed; echo $? > ~/{STATUS}"
    return (f"rm -f ~/{STATUS} && setsid nohup bash -c {shlex.quote(job)} > ~/{LOG} 2>&1 "
            f"< /dev/null & echo started")


STATUS_SCRIPT = (f"if [ -f ~/{STATUS} ]; then echo \"finished, exit status $(cat ~/{STATUS})\"; "
                 f"elif pgrep -f -- --distributed > /dev/null; then echo running; "
                 f"else echo 'not running'; fi; "
                 f"echo \"epochs logged: $(grep -c '^epoch' ~/{LOG} 2>/dev/null)\"; "
                 f"tail -n 3 ~/{LOG} 2>/dev/null")


def commands(step: str, args: argparse.Namespace) -> list[list[str]]:
    """The shell commands of one step (``wait`` polls ``status``: see :func:`wait`)."""
    if step == "create":
        if args.queued:
            return [gcloud(args, "queued-resources", "create", args.name,
                           f"--node-id={args.name}", f"--accelerator-type={args.accelerator_type}",
                           f"--runtime-version={args.runtime_version}",
                           *(["--spot"] if args.spot else [])),
                    describe_command(args)]
        return [tpu(args, "create", args.name, f"--accelerator-type={args.accelerator_type}",
                    f"--version={args.runtime_version}", *(["--spot"] if args.spot else []))]
    if step == "upload":
        if args.repo:
            return [on_workers(args, f"rm -rf {REMOTE_DIR} && git clone --depth=1 "
                                     f"{shlex.quote(args.repo)} {REMOTE_DIR}")]
        root = Path(__file__).resolve().parents[1]
        return [["git", "-C", str(root), "archive", "--format=tar.gz", f"--output={ARCHIVE}",
                 "HEAD"],
                tpu(args, "scp", ARCHIVE, f"{args.name}:~/", "--worker=all"),
                on_workers(args, f"rm -rf {REMOTE_DIR} && mkdir {REMOTE_DIR} && "
                                 f"tar -xzf jaxcolor.tar.gz -C {REMOTE_DIR}")]
    if step == "install":
        return [on_workers(args, f"cd {REMOTE_DIR} && pip install -U 'jax[tpu]' && "
                                 f"pip install -e '.[cloud]'")]
    if step == "start":
        return [on_workers(args, start_script(args))]
    if step in ("status", "wait"):
        return [on_workers(args, STATUS_SCRIPT, "0" if step == "wait" else "all")]
    if step == "logs":
        return [on_workers(args, f"tail -n 50 -F ~/{LOG}", "0")]
    if step == "fetch":  # only process 0 writes tables and figures; every worker logs
        return [["mkdir", "-p", args.results],
                tpu(args, "scp", "--recurse", f"{args.name}:~/{REMOTE_DIR}/results/*",
                    args.results, "--worker=0"),
                tpu(args, "scp", f"{args.name}:~/{LOG}", f"{args.results}/", "--worker=0")]
    if step == "delete":
        return [delete_command(args)]
    raise ValueError(step)


def execute(command: list[str], args: argparse.Namespace, capture: bool = False) -> str:
    """Run one command (printed first); its stdout when ``capture``; StepFailedError if it
    fails."""
    print("+ " + shlex.join(command), flush=True)
    if args.dry_run:
        return ""
    result = subprocess.run(command, capture_output=capture, text=True)
    if result.returncode != 0:
        raise StepFailedError(shlex.join(command))
    if capture:
        print(result.stdout, end="", flush=True)
    return result.stdout or ""


def describe_command(args: argparse.Namespace) -> list[str]:
    if args.queued:
        return gcloud(args, "queued-resources", "describe", args.name,
                      "--format=value(state.state)")
    return tpu(args, "describe", args.name, "--format=value(state)")


RUNNING_STATES = ("READY", "ACTIVE")  # a TPU VM's, a queued resource's


def existing_state(args: argparse.Namespace) -> str | None:
    """The state of the VM (or queued resource) ``--name``, None where there is none."""
    command = describe_command(args)
    print("+ " + shlex.join(command), flush=True)
    if args.dry_run:
        return None
    result = subprocess.run(command, capture_output=True, text=True)
    return (result.stdout.strip() or "UNKNOWN") if result.returncode == 0 else None


def create(args: argparse.Namespace) -> bool:
    """Create the VM; True when this call created it. A running one of that name is used as it
    is; a preempted or failed one (a Spot VM's fate) is deleted first, so the same command
    works again after a preemption."""
    state = existing_state(args)
    if state in RUNNING_STATES:
        print(f"the VM {args.name} exists ({state}): using it", flush=True)
        return False
    if state is not None:
        print(f"the VM {args.name} exists but is {state} (preempted?): deleting it first",
              flush=True)
        execute(delete_command(args), args)
    ask = commands("create", args)
    execute(ask[0], args)
    if args.queued:  # wait until the queued resource holds the VM
        while not args.dry_run and execute(ask[1], args, capture=True).strip() != "ACTIVE":
            time.sleep(args.poll)
    return True


def run_step(step: str, args: argparse.Namespace) -> bool:
    """Run one step; True when it created the VM."""
    if step == "create":
        return create(args)
    if step == "wait":
        wait(args)
        return False
    for command in commands(step, args):
        execute(command, args)
    return False


def wait(args: argparse.Namespace) -> None:
    """Poll worker 0's status until the experiment has finished; StepFailedError if it failed."""
    while True:
        output = execute(commands("wait", args)[0], args, capture=True)
        if args.dry_run or output.startswith("finished"):
            break
        if output.startswith("not running"):
            raise StepFailedError("the experiment stopped without an exit status (preempted?)")
        time.sleep(args.poll)
    if not args.dry_run and not output.startswith("finished, exit status 0"):
        raise StepFailedError(f"the experiment failed ({output.splitlines()[0]}); "
                         f"see {args.results}/{LOG} after fetch")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    created = False
    steps = ALL if args.step == "all" else (args.step,)
    try:
        for step in steps:
            created = run_step(step, args) or created
    except StepFailedError as failure:
        step_message = f"error: step '{step}' failed: {failure}"
        if step == "create":
            print(f"{step_message}; no VM was created by this command.", file=sys.stderr)
            return 1
        delete = shlex.join(delete_command(args))
        if args.step == "all" and step == "wait":  # bring home the log of the failed run
            with contextlib.suppress(StepFailedError):
                run_step("fetch", args)
        if args.step != "all" or not created or args.keep:
            why = "kept (--keep)" if args.keep else "may still exist"
            print(f"{step_message}; the VM {args.name} {why}: delete it with: {delete}",
                  file=sys.stderr)
            return 1
        try:
            execute(delete_command(args), args)
        except StepFailedError:
            print(f"{step_message}; deleting the VM {args.name} failed too: it still exists, "
                  f"delete it with: {delete}", file=sys.stderr)
            return 1
        print(f"{step_message}; deleted the VM {args.name} this command created.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
