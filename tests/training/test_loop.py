import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import fit_task, make_task, model_for, tiny_colour_task

from jaxcolor import data
from jaxcolor.cpu import compiler
from jaxcolor.models import ModelSpec, build_model
from jaxcolor.models.layers import CONV_INITS
from jaxcolor.objectives import CLASSIFICATION
from jaxcolor.training import parallel
from jaxcolor.training import state as train_state
from jaxcolor.training import steps as train


@pytest.fixture(scope="module")
def tiny_task():
    return tiny_colour_task(seed=0)


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
    model = model_for("unet", 4, task)
    return fit_task(model, task, epochs=epochs, batch_size=8, learning_rate=0.01, seed=seed,
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


def test_epoch_lines_give_the_run_s_eta_and_a_progress_bar_changes_no_number(tiny_task,
                                                                            capsys):
    lines = []
    quiet = fit_tiny(tiny_task, epochs=3, log=lines.append).history
    assert [" ETA " in line for line in lines if line.startswith("epoch")] == [True, True, False]
    model = model_for("unet", 4, tiny_task)
    with_bar = fit_task(model, tiny_task, epochs=3, batch_size=8, learning_rate=0.01, seed=0,
                        log=lambda line: None, progress=True).history
    assert "epoch 3/3" in capsys.readouterr().err  # tqdm's bar, on stderr
    assert [r.train_loss for r in with_bar] == [r.train_loss for r in quiet]


def test_same_seed_same_numbers_other_seed_differs(tiny_task):
    def numbers(seed):
        return [(r.train_loss, r.val_loss, r.val_accuracy)
                for r in fit_tiny(tiny_task, epochs=2, seed=seed).history]

    first = numbers(3)
    assert numbers(3) == first
    assert numbers(4) != first


def test_train_steps_overfit_a_tiny_batch(tiny_task):
    model = model_for("cnn", 8, tiny_task)
    tx = optax.adam(0.02)
    inputs = jnp.asarray(tiny_task.train_inputs[:4])
    targets = jnp.asarray(tiny_task.train_targets[:4])
    state = train_state.create_train_state(model, tx, inputs[:1], jax.random.key(0))
    step = train.make_train_step(model, tx, CLASSIFICATION, parallel.data_mesh())
    order = jnp.arange(4)[None, None]  # (hosts, batches, batch per host)
    losses = []
    for _ in range(150):
        state, loss = step(state, inputs[None], targets[None], order, 0)
        losses.append(float(loss))
    assert losses[-1] < 0.35 * losses[0]
    logits = jax.jit(lambda v: model.apply(v, inputs, train=True, mutable=["batch_stats"]))(
        {"params": state.params, "batch_stats": state.batch_stats})[0]
    assert float(jnp.mean(jnp.argmax(logits, -1) == targets)) > 0.85


def test_shuffle_covers_each_example_at_most_once(tiny_task):
    model = build_model(ModelSpec("cnn", num_filters=2, kernel=3, num_outputs=3))
    state = train_state.create_train_state(model, optax.adam(1e-3), jnp.zeros((1, 32, 32, 1)),
                                     jax.random.key(0))
    rows = parallel.per_host(parallel.data_mesh())
    state2, order = train.shuffle_batches(state, 10, 3, rows)
    assert order.shape == (1, 3, 3) and len(set(np.asarray(order).ravel())) == 9
    _, order2 = train.shuffle_batches(state2, 10, 3, rows)
    assert not np.array_equal(order, order2)  # a fresh order every epoch


def test_padded_evaluation_equals_unpadded(tiny_task):
    model = model_for("cnn", 4, tiny_task)
    state = train_state.create_train_state(model, optax.adam(1e-3), jnp.zeros((1, 32, 32, 1)),
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


def test_scan_epoch_computes_the_step_by_step_epoch(tiny_task):
    """make_train_epoch (one compiled lax.scan) = make_train_step called per batch."""
    model = model_for("unet", 4, tiny_task)
    tx, mesh = optax.adam(0.01), parallel.data_mesh()
    inputs = jnp.asarray(tiny_task.train_inputs)[None]
    targets = jnp.asarray(tiny_task.train_targets)[None]
    order = jnp.asarray(np.random.default_rng(0).permutation(32)).reshape(1, 4, 8)
    fresh = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
    step = train.make_train_step(model, tx, CLASSIFICATION, mesh)
    stepped, losses = jax.tree.map(jnp.copy, fresh), []
    for i in range(4):
        stepped, loss = step(stepped, inputs, targets, order, i)
        losses.append(loss)
    scanned, scan_losses = train.make_train_epoch(model, tx, CLASSIFICATION, mesh)(
        jax.tree.map(jnp.copy, fresh), inputs, targets, order)
    np.testing.assert_allclose(scan_losses, jnp.stack(losses), rtol=1e-5)
    assert int(scanned.step) == int(stepped.step) == 4
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(stepped.params),
                            jax.tree.leaves(scanned.params), strict=True):
        name = jax.tree_util.keystr(path)
        if "Conv_0" in name and "bias" in name:
            # A conv bias feeding BatchNorm has a zero gradient up to rounding, which Adam
            # scales to ±lr: these differ by rounding amplified, in both paths alike.
            continue
        # Weights move by ~lr = 1e-2 per step; rounding differs between the two compiled
        # programs (and between CPUs: ~2e-6 seen with AVX-512), far below that.
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=name)


def test_fit_with_scan_epochs_matches_step_by_step():
    """fit(epoch_loop="scan") reports the step-by-step losses. Validation uses BatchNorm's
    running means, which carry the rounding-amplified conv biases (above), hence rel=1e-2.
    (Regression: a classifier's accuracy after a few steps hinges on near-tied logits.)"""
    images = data.synthetic_images(48, seed=1)
    task = make_task("regression", images[:32], images[32:], np.zeros((1, 3), np.uint8))
    model = build_model(ModelSpec("regression_cnn", num_filters=4, kernel=3, num_outputs=3))
    runs = {loop: fit_task(model, task, epochs=2, batch_size=8, learning_rate=1e-3, seed=2,
                            log=lambda line: None, epoch_loop=loop).history
            for loop in train.EPOCH_LOOPS}
    for a, b in zip(runs["steps"], runs["scan"], strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, rel=1e-5)
        assert b.val_loss == pytest.approx(a.val_loss, rel=1e-2)
    assert runs["scan"][-1].train_loss < runs["scan"][0].train_loss


def test_cpu_steps_compile_without_ynnpack(tiny_task):
    """XLA:CPU's YNNPACK convolution weight gradient is the slow path (jaxcolor/cpu/compiler.py).
    (XLA's convolutions, as where the native CPU kernels are not available.)"""
    assert compiler.step_options("gpu") is None and compiler.step_options("tpu") is None
    model = build_model(ModelSpec("cnn", num_filters=4, kernel=3,
                                  num_outputs=tiny_task.task.num_outputs, conv_impl="xla"))
    tx = optax.adam(1e-3)
    inputs = jnp.asarray(tiny_task.train_inputs[:8])[None]
    targets = jnp.asarray(tiny_task.train_targets[:8])[None]
    state = train_state.create_train_state(model, tx, inputs[0, :1], jax.random.key(0))
    mesh = parallel.data_mesh()
    compiled = train.make_train_step(model, tx, CLASSIFICATION, mesh).lower(
        state, inputs, targets, jnp.arange(8).reshape(1, 1, 8), 0).compile().as_text()
    default = jax.jit(train._train_step(model, tx, CLASSIFICATION, mesh)).lower(
        state, inputs, targets, jnp.arange(8).reshape(1, 1, 8), 0).compile().as_text()
    assert compiler.step_options() == compiler.CPU_OPTIONS
    assert "convolution(" in compiled and "ynn_fusion" not in compiled
    assert "ynn_fusion" in default  # what the options switch off: XLA:CPU's default today


def test_one_shot_compiles_give_the_values_of_optimised_ones():
    """compiled_once (no LLVM optimisation on CPU) changes compile time, not values beyond float
    rounding: a UNet's loss gradient against a compile at level 2 (the tests' own XLA_FLAGS set
    level 0, so it is asked for explicitly)."""
    assert compiler.one_shot_options("gpu") is None
    # The LLVM emitters' option where this jaxlib knows it (jaxlib 0.12 dropped it), else without.
    assert compiler.one_shot_options() in ({**compiler.ONE_SHOT_CPU_OPTIONS,
                                            **compiler.LLVM_EMITTERS},
                                           compiler.ONE_SHOT_CPU_OPTIONS)
    model = build_model(ModelSpec("unet", num_filters=4, kernel=3, num_outputs=5))
    inputs = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    targets = jax.random.randint(jax.random.key(1), (4, 8, 8), 0, 5)
    variables = jax.jit(lambda key: model.init(key, inputs[:1], train=False))(jax.random.key(2))

    def loss(params):
        outputs, _ = model.apply({**variables, "params": params}, inputs, train=True,
                                 mutable=["batch_stats"])
        return jnp.mean(CLASSIFICATION.loss(outputs, targets))

    gradient = jax.grad(loss)

    optimised = jax.jit(gradient, compiler_options={**compiler.CPU_OPTIONS,
                                                    "xla_backend_optimization_level": 2})
    for got, want in zip(jax.tree.leaves(train.compiled_once(gradient)(variables["params"])),
                         jax.tree.leaves(optimised(variables["params"])), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_initial_states_compiled_for_speed_are_the_same_to_the_bit():
    """fit builds the initial state with compiler.init_options (level 2 and the LLVM fusion
    emitters on CPU): the same bits as XLA's default level 3 and MLIR emitters (level 3 asked for
    explicitly: the tests' XLA_FLAGS set level 0, which changes a lecun init's last bits),
    parameters, optimizer state and PRNG key alike, for both initialisers (built in one program,
    one compile per option set)."""
    assert compiler.init_options("gpu") is None
    assert compiler.init_options() in ({**compiler.INIT_CPU_OPTIONS, **compiler.LLVM_EMITTERS},
                                       compiler.INIT_CPU_OPTIONS)
    models = [build_model(ModelSpec("unet", num_filters=4, kernel=3, num_outputs=5,
                                    conv_init=conv_init)) for conv_init in CONV_INITS]
    tx = optax.adam(1e-3)

    def initial_states(options):
        states = jax.jit(lambda key: [train_state.create_train_state(
            model, tx, jnp.zeros((1, 8, 8, 1)), key) for model in models],
            compiler_options=options)(jax.random.key(0))
        return jax.tree.leaves([state.replace(rng=jax.random.key_data(state.rng))
                                for state in states])

    default = initial_states({**compiler.CPU_OPTIONS, "xla_backend_optimization_level": 3})
    for got, want in zip(initial_states(compiler.init_options()), default, strict=True):
        np.testing.assert_array_equal(got, want)


def test_mirror_where_mirrors_only_the_chosen_images():
    images = jnp.arange(3 * 2 * 4 * 2).reshape(3, 2, 4, 2)
    mirrored = train.mirror_where(jnp.array([True, False, True]), images)
    np.testing.assert_array_equal(mirrored[0], images[0, :, ::-1])
    np.testing.assert_array_equal(mirrored[1], images[1])
    np.testing.assert_array_equal(mirrored[2], images[2, :, ::-1])
    labels = jnp.arange(2 * 2 * 3).reshape(2, 2, 3)  # per-pixel class targets (N, H, W)
    np.testing.assert_array_equal(train.mirror_where(jnp.array([True, False]), labels),
                                  jnp.stack([labels[0, :, ::-1], labels[1]]))


def test_hflip_step_trains_on_the_mirrored_batch_it_draws(tiny_task):
    """A --hflip step equals a plain step on the same batch with the images it drew (from the
    state's key and step) mirrored, inputs and targets alike; the draw changes every step."""
    model = model_for("cnn", 4, tiny_task)
    tx, mesh = optax.adam(0.01), parallel.data_mesh()
    inputs = jnp.asarray(tiny_task.train_inputs[:8])
    targets = jnp.asarray(tiny_task.train_targets[:8])
    order = jnp.arange(8)[None, None]
    fresh = train_state.create_train_state(model, tx, inputs[:1], jax.random.key(0))
    flips = [jax.random.bernoulli(jax.random.fold_in(fresh.rng, step), shape=(8,))
             for step in range(2)]
    assert 0 < int(flips[0].sum()) < 8 and not np.array_equal(flips[0], flips[1])

    flipping = train.make_train_step(model, tx, CLASSIFICATION, mesh, hflip=True)
    plain = train.make_train_step(model, tx, CLASSIFICATION, mesh)
    flipped_state, plain_state = jax.tree.map(jnp.copy, fresh), jax.tree.map(jnp.copy, fresh)
    for flip in flips:
        flipped_state, flipped_loss = flipping(flipped_state, inputs[None], targets[None],
                                               order, 0)
        mirrored = [train.mirror_where(flip, a)[None] for a in (inputs, targets)]
        plain_state, plain_loss = plain(plain_state, *mirrored, order, 0)
        np.testing.assert_allclose(flipped_loss, plain_loss, rtol=1e-6)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(flipped_state.params),
                            jax.tree.leaves(plain_state.params), strict=True):
        name = jax.tree_util.keystr(path)
        if "Conv_0" in name and "bias" in name:
            continue  # rounding amplified to ±lr by Adam, as in the scan test above
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


def test_bfloat16_training_learns_as_float32_does(tiny_task):
    """--precision=bfloat16: the same run's losses within bfloat16's noise of float32's, and
    its state (parameters, statistics, optimizer) float32, so checkpoints fit either."""
    model = model_for("cnn", 8, tiny_task)
    runs = {precision: fit_task(model, tiny_task, epochs=6, batch_size=8, learning_rate=0.01,
                                precision=precision) for precision in ("float32", "bfloat16")}
    full, half = ([record.train_loss for record in runs[p].history] for p in runs)
    assert half[-1] < 0.8 * half[0]
    np.testing.assert_allclose(half, full, rtol=0.05)
    assert {leaf.dtype.name for leaf in jax.tree.leaves(runs["bfloat16"].state)
            if jnp.issubdtype(leaf.dtype, jnp.floating)} == {"float32"}
