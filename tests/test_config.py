"""ExperimentConfig validates itself on construction and on every replace."""

import re

import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "--batch_size=0 must be a positive integer"),
    ({"num_colours": 1}, "--num_colours=1 must be at least 2"),
    ({"kernel": 4}, "--kernel=4 must be a positive odd number"),
    ({"temperature": 0.0}, "--temperature=0.0 must lie in (0, 10]"),
    ({"learning_rate": -1.0}, "--learning_rate=-1.0 must be positive"),
    ({"report_epochs": (30,)}, "report epochs [30] must lie in 1..--epochs=25"),
    ({"category": "zebra"}, "--category='zebra' is unknown"),
    ({"checkpoint_every": -1}, "--checkpoint_every=-1 must be 0 (the last and reported epochs "
                               "only) or a positive number of epochs"),
])
def test_every_construction_and_replace_validates(changes, message):
    with pytest.raises(UserError, match=re.escape(message)):
        ExperimentConfig("x", **changes)
    with pytest.raises(UserError, match=re.escape(message)):
        ExperimentConfig("x").replace(**changes)


def test_a_folder_source_accepts_its_own_category_names():
    assert ExperimentConfig("x", category="zebra", image_dir="/tmp").category == "zebra"


def test_checkpoint_every_zero_means_only_the_last_and_reported_epochs():
    assert ExperimentConfig("x", checkpoint_every=0).checkpoint_every == 0


# Run names and fingerprint fields as written out by hand before the settings were declared in
# ExperimentConfig: checkpoints made then must still resume.
def _old_run_name(cfg):
    schedule = "" if cfg.lr_schedule == "constant" else (
        f"_{cfg.lr_schedule}{cfg.epochs}" + (f"w{cfg.warmup_epochs}" if cfg.warmup_epochs else ""))
    return (f"{cfg.model}_{cfg.task}_{cfg.loss}_bs{cfg.batch_size}_lr{cfg.learning_rate:g}"
            f"_nf{cfg.num_filters}_k{cfg.kernel}_s{cfg.seed}{'_hflip' if cfg.hflip else ''}"
            + schedule)


OLD_FINGERPRINT = {"model", "task", "loss", "batch_size", "learning_rate", "num_filters", "kernel",
                   "conv_init", "num_colours", "seed", "category"}


@pytest.mark.parametrize("changes", [
    {}, {"model": "unet", "batch_size": 50}, {"learning_rate": 5e-4, "seed": 2, "hflip": True},
    {"lr_schedule": "cosine", "warmup_epochs": 1, "epochs": 30}, {"task": "lab_bins",
                                                                  "loss": "rebalanced"},
    {"num_filters": 8, "kernel": 5, "conv_init": "lecun", "num_colours": 6, "category": "all"},
])
def test_run_names_and_fingerprints_are_those_checkpoints_were_made_with(changes):
    from jaxcolor.training import run_fingerprint, run_name

    cfg = ExperimentConfig("x", **changes)
    assert run_name(cfg) == _old_run_name(cfg)
    fingerprint = run_fingerprint(cfg, [], 10)
    assert fingerprint.keys() >= OLD_FINGERPRINT
    assert fingerprint.keys() - OLD_FINGERPRINT <= {"hflip", "lr_schedule", "epochs",
                                                    "warmup_epochs", "precision", "train_images",
                                                    "data_sha256"}


def test_the_precision_names_only_bfloat16_runs_and_enters_the_fingerprint():
    from jaxcolor.training import run_fingerprint, run_name

    cfg = ExperimentConfig("x", hflip=True)
    assert run_name(cfg.replace(precision="float32")) == _old_run_name(cfg)
    assert run_name(cfg.replace(precision="bfloat16")) == _old_run_name(cfg) + "_bfloat16"
    assert run_fingerprint(cfg.replace(precision="bfloat16"), [], 10)["precision"] == "bfloat16"
    with pytest.raises(UserError, match="--precision='float16' is unknown; use one of float32, "
                                        "bfloat16"):
        cfg.replace(precision="float16")


def test_the_published_runs_names_are_unchanged():
    """Every published row of a grid names its sample figure by its run: the same name comes
    from its settings now."""
    from pathlib import Path

    from jaxcolor.config import settings_where
    from jaxcolor.results import read_rows
    from jaxcolor.training import run_name

    root = Path(__file__).resolve().parents[1] / "docs" / "results"
    missing, checked = [], 0
    for path in sorted(root.glob("*/results.json")):
        for row in read_rows(path):
            settings = {name: row[name] for name in settings_where(row=True) if name in row}
            if len(settings) < len(settings_where(row=True)) - 2:  # not a grid's row
                continue
            cfg = ExperimentConfig(**settings)
            figure = path.parent / f"samples_{run_name(cfg)}_e{cfg.epochs}.png"
            checked += 1
            if not figure.exists():
                missing.append(str(figure))
    assert checked >= 40 and missing == []
