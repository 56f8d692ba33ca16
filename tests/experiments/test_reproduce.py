"""The sweep that makes every published result: its run list, and a tiny sweep that runs,
skips what is done at this commit, clears what other code wrote and stops on a failure."""

import json

import pytest
from conftest import REPO, run_script

from jaxcolor.errors import UserError
from jaxcolor.results import code_commit
from jaxcolor.runner.sweep import (
    MARKER,
    SHARED_CHECKPOINTS,
    Run,
    check_order,
    run_sweep,
    select,
)


def test_list_names_every_published_run_in_dependency_order():
    listed = run_script("reproduce", "--list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) >= 15 and all(" experiments/" in line for line in lines)
    names = [line.split("--output_dir=results/")[1] for line in lines]
    assert len(set(names)) == len(names)
    for before, after in (("q2_classification", "q3_unet"), ("q4_super_resolution",
                          "q6c_perceptual"), ("q7_lab_seed2", "q7_over_seeds"),
                          ("r0_char_rnn", "r4_dependency")):
        assert names.index(before) < names.index(after)
    only = run_script("reproduce", "--list", "--only=q3,r1_temperature").stdout.splitlines()
    assert [line.split("results/")[-1] for line in only] == [
        "q3_unet", "q3_unet_2ep_1device", "q3_unet_2ep_4devices", "r1_temperature"]


def test_run_lists_are_checked():
    with pytest.raises(ValueError, match="q3 needs q2"):
        check_order([Run("q3", "q3_unet", needs=("q2",)), Run("q2", "q2_classification")])
    with pytest.raises(UserError, match="no run is named q9"):
        select([Run("q2_a", "q2_classification")], ["q9"])


TINY = ("--source=synthetic", "--batch_size=32", "--num_filters=4", "--num_colours=6",
        "--num_samples=2", "--epochs=1")


@pytest.mark.slow
def test_a_sweep_runs_skips_what_is_done_and_redoes_what_other_code_wrote(tmp_path):
    commit = code_commit()
    runs = [Run("q2_classification", "q2_classification", TINY),
            Run("q3_unet", "q3_unet", TINY, ("q2_classification",))]
    lines = []
    run_sweep(runs, tmp_path, commit, log=lines.append)
    assert [line.split(" (")[0] for line in lines if line.startswith("[")] == [
        "[1/2] q2_classification", "[2/2] q3_unet"]
    for run in runs:
        rows = json.loads((tmp_path / run.name / "results.json").read_text())
        assert rows and {row["commit"] for row in rows} == {commit}
        assert (tmp_path / run.name / MARKER).read_text() == f"{commit}\ndone\n"
    lines.clear()
    run_sweep(runs, tmp_path, commit, log=lines.append)
    assert lines == ["2 of 2 runs already done at this commit: skipped"]

    (tmp_path / "q3_unet" / MARKER).write_text("another\ndone\n")
    stale = tmp_path / "q3_unet" / "results.json"
    stale.write_text(json.dumps([{"experiment": "q3_unet", "commit": "another commit"}]))
    lines.clear()
    run_sweep(runs, tmp_path, commit, log=lines.append)
    assert lines[0] == "1 of 2 runs already done at this commit: skipped"
    assert any(line.startswith("q3_unet: clearing") for line in lines)
    assert {row["commit"] for row in json.loads(stale.read_text())} == {commit}

    (tmp_path / "q2_classification" / MARKER).write_text(f"{commit}\n")  # started, not done
    lines.clear()
    run_sweep(runs, tmp_path, commit, log=lines.append)
    assert lines[0] == "1 of 2 runs already done at this commit: skipped"
    assert lines[1].startswith("[1/1] q2_classification (")
    assert lines[-1].startswith("q2_classification done in")
    assert not any("clearing" in line for line in lines)  # resumed from its checkpoints

    with pytest.raises(UserError, match=r"q2_bad failed \(exit 2\)"):
        run_sweep([Run("q2_bad", "q2_classification", (*TINY, "--batch_size=0"))], tmp_path,
                  commit, log=lines.append)


def test_runs_of_one_training_share_it_through_the_sweeps_checkpoints(tmp_path, capfd):
    commit, shared = code_commit(), (*TINY, f"--checkpoint_dir={{results}}/{SHARED_CHECKPOINTS}")
    stale = tmp_path / SHARED_CHECKPOINTS / "from_other_code"
    stale.mkdir(parents=True)
    runs = [Run("q2_classification", "q2_classification", shared),
            Run("q6a_same_training", "q2_classification", shared)]
    lines = []
    run_sweep(runs, tmp_path, commit, log=lines.append)
    assert any(line.startswith(f"{SHARED_CHECKPOINTS}: clearing") for line in lines)
    assert not stale.exists()
    assert "resuming after epoch 1" in capfd.readouterr().out  # the second run trained nothing
    first, second = (json.loads((tmp_path / run.name / "results.json").read_text())
                     for run in runs)
    assert [row["val_loss"] for row in first] == [row["val_loss"] for row in second]


def test_every_experiment_script_is_a_published_run():
    listed = run_script("reproduce", "--list").stdout
    scripts = {path.stem for path in (REPO / "experiments").glob("*.py")
               if path.stem not in ("reproduce", "report")}
    assert scripts and [name for name in sorted(scripts)
                        if f"experiments/{name}.py " not in listed] == []
