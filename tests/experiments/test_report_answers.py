import json

from conftest import REPO, run_script

from answers.report import settings_of


def test_settings_name_what_differs_from_the_defaults():
    assert settings_of({"num_filters": 32, "kernel": 3, "seed": 0}) is None
    assert settings_of({"num_filters": 16, "kernel": 5, "seed": 2, "lr_schedule": "cosine",
                        "warmup_epochs": 1, "hflip": True}) == (
        "NF 16, kernel 5, seed 2, cosine, 1-epoch warm-up, hflip")
    assert settings_of({"lr_schedule": "cosine"}) == "cosine"
    assert settings_of({"category": "all", "seed": 1}) == "seed 1, category all"


def test_results_md_is_what_the_report_writes_from_docs_results(monkeypatch):
    """The published report is generated, not edited: CI fails when RESULTS.md or a link in it
    does not match docs/results."""
    monkeypatch.chdir(REPO)
    checked = run_script("report", "--check", "--results_dir=docs/results")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _experiment(folder, accuracy, commit="abc", experiment=None):
    folder.mkdir(parents=True)
    row = {"experiment": experiment or folder.name, "model": "cnn", "val_accuracy": accuracy,
           "commit": commit, "versions": {"jax": "0.1"}, "backend": "cpu",
           "device_kind": "cpu", "date": "2026-11-24"}
    (folder / "results.json").write_text(json.dumps([row]))
    (folder / "results.md").write_text("# x\n")
    (folder / "curve.png").write_bytes(b"png")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "state").write_bytes(b"weights")


def test_publishing_copies_results_and_check_finds_every_difference(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _experiment(tmp_path / "results" / "q2_a", 41.0)
    _experiment(tmp_path / "results" / "q3_b", 48.0)
    (tmp_path / "docs" / "results" / "q1_old").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "q1_old" / "results.json").write_text("[]")
    assert run_script("report").returncode == 0
    published = tmp_path / "docs" / "results"
    assert sorted(p.name for p in published.iterdir()) == ["q2_a", "q3_b"]  # q1_old removed
    assert not (published / "q2_a" / "checkpoints").exists()
    text = (tmp_path / "RESULTS.md").read_text()
    assert "at commit `abc` (2026-11-24)" in text and "](docs/results/q2_a/curve.png)" in text
    assert run_script("report", "--check").returncode == 0

    (published / "q2_a" / "curve.png").write_bytes(b"edited")
    (published / "q3_b" / "curve.png").unlink()
    checked = run_script("report", "--check")
    assert checked.returncode == 2 and checked.stderr.count("error:") == 1
    assert "q2_a/curve.png: differs from" in checked.stdout
    assert "q3_b/curve.png: missing" in checked.stdout
    assert "RESULTS.md: links to missing docs/results/q3_b/curve.png" in checked.stdout

    _experiment(tmp_path / "results" / "q4_c", 46.0, commit="def")
    _experiment(tmp_path / "results" / "q2_a_seed1", 42.0, experiment="q2_a")  # a variant
    assert run_script("report").returncode == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "**Not one sweep:** these rows come from 2 recorded commit(s) (abc, def)" in text
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## q2_a (and 1 variant)", "## q3_b", "## q4_c"]
    assert "| q2_a_seed1 | cnn |" in text
    assert "[q2_a_seed1](docs/results/q2_a_seed1/results.md)" in text
    assert run_script("report", "--check").returncode == 0
