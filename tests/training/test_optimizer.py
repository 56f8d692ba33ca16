import jax.numpy as jnp
import numpy as np
import pytest

from jaxcolor.config import ExperimentConfig
from jaxcolor.errors import UserError
from jaxcolor.training import run_fingerprint, run_name
from jaxcolor.training.optimizer import adam, learning_rate


def test_cosine_decays_to_zero_over_the_run_after_a_linear_warm_up():
    assert learning_rate(1e-3) == 1e-3
    schedule = learning_rate(1e-3, "cosine", total_steps=10, warmup_steps=2)
    rates = [float(schedule(step)) for step in range(11)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.5e-3)
    assert rates[2] == pytest.approx(1e-3)
    assert rates[6] == pytest.approx(0.5e-3)  # halfway through the decay
    assert rates[10] == pytest.approx(0.0, abs=1e-12)
    assert rates[2:] == sorted(rates[2:], reverse=True)


def test_adam_takes_the_scheduled_steps():
    """Adam's first update is −lr·sign(gradient): a zero learning rate at step 0 of a warm-up."""
    params = jnp.ones(3)
    for schedule, expected in (("constant", -1e-3), ("cosine", 0.0)):
        tx = adam(1e-3, schedule, total_steps=10, warmup_steps=2)
        updates, _ = tx.update(jnp.ones(3), tx.init(params), params)
        np.testing.assert_allclose(updates, np.full(3, expected), atol=1e-7)  # Adam's ε


def test_bad_schedules_are_one_line_errors():
    with pytest.raises(UserError, match="--lr_schedule='step' is unknown"):
        adam(1e-3, "step", 10)
    with pytest.raises(UserError, match="lower --warmup_epochs"):
        adam(1e-3, "cosine", total_steps=10, warmup_steps=10)
    with pytest.raises(UserError, match="--warmup_epochs=2 must be 0, or positive with"):
        ExperimentConfig(experiment="x", warmup_epochs=2)


def test_a_scheduled_run_is_named_and_fingerprinted_by_its_length():
    """A cosine run's steps depend on its length, so a longer one neither extends nor resumes a
    shorter one; constant-rate runs keep the names their checkpoints already have."""
    constant = ExperimentConfig(experiment="x")
    assert run_name(constant) == run_name(constant.replace(epochs=50))
    assert "cosine" not in str(run_fingerprint(constant, [], 10))
    cosine = constant.replace(lr_schedule="cosine", warmup_epochs=1)
    assert run_name(cosine).endswith("_cosine25w1")
    assert run_name(cosine) != run_name(cosine.replace(epochs=50))
    assert run_fingerprint(cosine, [], 10)["epochs"] == 25
