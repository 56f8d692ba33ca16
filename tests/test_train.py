import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcolor import colours, data, parallel, tasks, train
from jaxcolor.models import build_model
from jaxcolor.objectives import CLASSIFICATION


@pytest.fixture(scope="module")
def tiny_task():
    images = data.synthetic_images(48, seed=0)
    palette = colours.colour_palette(images, 6, seed=0)
    return tasks.make_task("colourization", images[:32], images[32:], palette)


@pytest.fixture(scope="module")
def compile_counter():
    """Counts XLA backend compilations while ``count`` is on."""
    state = {"on": False, "count": 0}

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration" and state["on"]:
            state["count"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield state
    jax.monitoring.unregister_event_duration_listener(listener)


def fit_tiny(task, epochs, seed=0, log=lambda line: None):
    model = build_model("unet", num_filters=4, kernel=3, num_outputs=task.num_outputs)
    return train.fit(model, task, epochs=epochs, batch_size=8, learning_rate=0.01, seed=seed,
                     log=log)


def test_fit_learns_logs_and_compiles_nothing_after_epoch_one(tiny_task, compile_counter):
    compiles_at_epoch = []

    def log(line):
        if line.startswith("epoch"):
            compiles_at_epoch.append(compile_counter["count"])

    compile_counter.update(on=True, count=0)
    history = fit_tiny(tiny_task, epochs=4, log=log).history
    compile_counter["on"] = False
    assert [r.epoch for r in history] == [1, 2, 3, 4]
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_loss < history[0].val_loss
    assert all(0.0 <= r.val_accuracy <= 100.0 and r.train_images_per_sec > 0 for r in history)
    assert len(compiles_at_epoch) == 4
    assert compiles_at_epoch[-1] == compiles_at_epoch[0]  # fixed shapes: no recompilation


def test_same_seed_same_numbers_other_seed_differs(tiny_task):
    def numbers(seed):
        return [(r.train_loss, r.val_loss, r.val_accuracy)
                for r in fit_tiny(tiny_task, epochs=2, seed=seed).history]

    first = numbers(3)
    assert numbers(3) == first
    assert numbers(4) != first


def test_train_steps_overfit_a_tiny_batch(tiny_task):
    model = build_model("cnn", num_filters=8, kernel=3, num_outputs=tiny_task.num_outputs)
    tx = optax.adam(0.02)
    inputs = jnp.asarray(tiny_task.train_inputs[:4])
    targets = jnp.asarray(tiny_task.train_targets[:4])
    state = train.create_train_state(model, tx, inputs[:1], jax.random.key(0))
    step = train.make_train_step(model, tx, CLASSIFICATION, parallel.data_mesh())
    order = jnp.arange(4)[None, None]  # (hosts, batches, batch per host)
    losses = []
    for _ in range(150):
        state, loss = step(state, inputs[None], targets[None], order, 0)
        losses.append(float(loss))
    assert losses[-1] < 0.35 * losses[0]
    logits = model.apply({"params": state.params, "batch_stats": state.batch_stats}, inputs,
                         train=True, mutable=["batch_stats"])[0]
    assert float(jnp.mean(jnp.argmax(logits, -1) == targets)) > 0.85


def test_shuffle_covers_each_example_at_most_once(tiny_task):
    model = build_model("cnn", num_filters=2, kernel=3, num_outputs=3)
    state = train.create_train_state(model, optax.adam(1e-3), jnp.zeros((1, 32, 32, 1)),
                                     jax.random.key(0))
    rows = parallel.per_host(parallel.data_mesh())
    state2, order = train.shuffle_batches(state, 10, 3, rows)
    assert order.shape == (1, 3, 3) and len(set(np.asarray(order).ravel())) == 9
    _, order2 = train.shuffle_batches(state2, 10, 3, rows)
    assert not np.array_equal(order, order2)  # a fresh order every epoch


def test_padded_evaluation_equals_unpadded(tiny_task):
    model = build_model("cnn", num_filters=4, kernel=3, num_outputs=tiny_task.num_outputs)
    state = train.create_train_state(model, optax.adam(1e-3), jnp.zeros((1, 32, 32, 1)),
                                     jax.random.key(1))
    mesh = parallel.data_mesh()
    eval_step = train.make_eval_step(model, CLASSIFICATION, mesh)
    arrays = [tiny_task.test_inputs[:7], tiny_task.test_targets[:7]]
    padded = train.evaluate(eval_step, state, train.device_batches(arrays, 3, mesh))
    whole = train.evaluate(eval_step, state, train.device_batches(arrays, 7, mesh))
    assert padded.keys() == {"loss", "accuracy"}
    for name in padded:
        assert padded[name] == pytest.approx(whole[name], rel=1e-5)


def test_first_epochs_of_a_longer_run_equal_a_shorter_run(tiny_task):
    """What lets q1 report 15/25/50 epochs from one run: no schedule depends on the total."""
    short = fit_tiny(tiny_task, epochs=2, seed=5).history
    longer = fit_tiny(tiny_task, epochs=3, seed=5).history
    assert [(r.train_loss, r.val_loss) for r in longer[:2]] == [
        (r.train_loss, r.val_loss) for r in short]
