"""Every results.json row says what produced it: commit, library versions, backend, date."""

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxcolor import results
from jaxcolor.results import provenance, write_results


def test_rows_carry_the_commit_versions_backend_and_date(tmp_path):
    write_results(tmp_path, [{"experiment": "a", "val_accuracy": 50.0}, {"experiment": "a"}])
    rows = json.loads((tmp_path / "results.json").read_text())
    assert [row["experiment"] for row in rows] == ["a", "a"] and rows[0]["val_accuracy"] == 50.0
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(results.__file__).parents[1]).stdout.strip()
    for row in rows:
        assert row["commit"] in (head, f"{head}-dirty")
        assert row["versions"] == {name: importlib.metadata.version(name)
                                   for name in ("jax", "jaxlib", "flax", "optax")}
        assert row["backend"] == jax.default_backend() == "cpu"
        assert row["device_kind"] == jax.devices()[0].device_kind
        assert len(row["date"]) == 10 and row["date"][4] == "-"


def test_a_changed_tracked_file_marks_the_commit_dirty(tmp_path, monkeypatch):
    """The mark comes from git's view of tracked files (a scratch repository stands in)."""
    repo = tmp_path / "repo"
    (repo / "jaxcolor").mkdir(parents=True)
    module = repo / "jaxcolor" / "results.py"
    module.write_text("x = 1\n")
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", "-C", str(repo), *command], check=True)
    monkeypatch.setattr(results, "__file__", str(module))
    results.code_commit.cache_clear()
    try:
        clean = results.code_commit()
        module.write_text("x = 2\n")
        results.code_commit.cache_clear()
        assert results.code_commit() == f"{clean}-dirty" and len(clean) == 40
        (repo / "untracked.txt").write_text("new")
        module.write_text("x = 1\n")
        results.code_commit.cache_clear()
        assert results.code_commit() == clean  # untracked files (results/, logs) do not count
    finally:
        results.code_commit.cache_clear()


def test_outside_a_git_checkout_the_commit_is_unknown(tmp_path, monkeypatch):
    (tmp_path / "jaxcolor").mkdir()
    monkeypatch.setattr(results, "__file__", str(tmp_path / "jaxcolor" / "results.py"))
    results.code_commit.cache_clear()
    try:
        assert provenance()["commit"] is None
    finally:
        results.code_commit.cache_clear()


@pytest.mark.slow  # a new Python process
def test_the_commit_is_read_when_the_code_is_loaded():
    """A commit made while a run goes on is not the code it runs: the run reports the commit
    its modules were imported from."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import jaxcolor.results as r; print(r.code_commit.cache_info()"
         ".currsize)"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "1"


def _row(**settings):
    return {"experiment": "q2", "model": "cnn", "task": "colourization", "batch_size": 100,
            "learning_rate": 0.001, "epochs": 1, **settings}


def test_a_run_keeps_the_rows_of_other_settings_and_replaces_its_own(tmp_path):
    said = []
    write_results(tmp_path, [_row(val_loss=3.0, images={"source": "tfds", "train": 5000,
                                                         "test": 1000})])
    write_results(tmp_path, [_row(learning_rate=0.01, val_loss=2.0)])  # another setting: kept
    assert [row["val_loss"] for row in results.read_rows(tmp_path / "results.json")] == [3.0, 2.0]
    write_results(tmp_path, [_row(val_loss=1.0, images={"source": "tfds", "train": 200,
                                                         "test": 1000})], log=said.append)
    rows = results.read_rows(tmp_path / "results.json")
    assert [(row["learning_rate"], row["val_loss"]) for row in rows] == [(0.01, 2.0),
                                                                        (0.001, 1.0)]
    assert said == ["results.json: the row of cnn colourization bs100 lr0.001 1ep is replaced "
                    "by this run's (images: 5,000 train / 1,000 test from tfds → 200 train / "
                    "1,000 test from tfds)"]


def _write_rows(folder: str, model: str, count: int) -> None:
    for epochs in range(1, count + 1):
        write_results(Path(folder), [_row(model=model, epochs=epochs)])


@pytest.mark.slow
def test_processes_writing_one_folder_at_once_lose_no_row(tmp_path):
    """Two real processes merge rows into one results.json at the same time, 150 times each."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_rows, args=(str(tmp_path), model, 150))
               for model in ("cnn", "unet")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    rows = results.read_rows(tmp_path / "results.json")
    assert sorted((row["model"], row["epochs"]) for row in rows) == sorted(
        (model, epochs) for model in ("cnn", "unet") for epochs in range(1, 151))
