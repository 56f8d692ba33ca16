import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcolor.charrnn import model as charrnn
from jaxcolor.errors import UserError


@pytest.fixture(scope="module")
def tiny():
    vocab = charrnn.Vocabulary.from_text("abcde:\n ")
    params = charrnn.init_params(jax.random.key(0), len(vocab), 6)
    params = jax.tree.map(lambda p: p * 30.0 + 0.05, params)  # larger weights: real gradients
    return vocab, params


def test_gradient_matches_finite_differences(tiny):
    vocab, params = tiny
    params = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    inputs = jnp.asarray(vocab.encode("abc:\nde a"))[None]
    targets = jnp.asarray(vocab.encode("bc:\nde ab"))[None]
    h0 = jnp.zeros((1, 6))

    def loss(p):
        return charrnn.chunk_loss(p, h0, inputs, targets)[0]

    grads = jax.grad(loss)(params)
    rng = np.random.default_rng(0)
    eps = 1e-2
    for name in charrnn.PARAM_NAMES:
        for _ in range(3):
            index = tuple(rng.integers(0, s) for s in params[name].shape)
            bump = jnp.zeros_like(params[name]).at[index].set(eps)
            up = loss({**params, name: params[name] + bump})
            down = loss({**params, name: params[name] - bump})
            numeric = float(up - down) / (2 * eps)
            assert float(grads[name][index]) == pytest.approx(numeric, rel=2e-2, abs=2e-3), name


def test_scan_forward_equals_step_by_step(tiny):
    vocab, params = tiny
    chars = jnp.asarray(vocab.encode("ab:\nc"))[None]
    h = jnp.zeros((1, 6))
    h_scan, logits = charrnn.forward(params, h, chars)
    for t in range(chars.shape[1]):
        h, step_logits = charrnn.step(params, h, chars[:, t])
        np.testing.assert_allclose(logits[:, t], step_logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_scan, h, rtol=1e-5, atol=1e-6)


def test_cold_sampling_is_argmax_decoding(tiny):
    vocab, params = tiny
    h, last = charrnn.run_prompt(params, vocab, "ab")
    sampled, _ = charrnn.sample(params, h, last, jax.random.key(1), 20, alpha=1e4)
    greedy, state, char = [], h[None], last[None]
    for _ in range(20):
        state, logits = charrnn.step(params, state, char)
        char = jnp.argmax(logits, axis=-1)
        greedy.append(int(char[0]))
    assert [int(c) for c in sampled] == greedy


def test_adagrad_matches_the_reference_update():
    """Reference: mem += g²; p -= lr · g / sqrt(mem + 1e-8), after clipping g to [-5, 5]."""
    tx = charrnn.make_optimizer("adagrad", 0.1)
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    state = tx.init(params)
    mem = np.zeros(3)
    p = np.array([1.0, -2.0, 3.0])
    for g in ([0.5, -7.0, 0.0], [2.0, 1.0, -0.25]):
        grads = {"w": jnp.asarray(g, jnp.float32)}
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        clipped = np.clip(g, -5, 5)
        mem += clipped**2
        p -= 0.1 * clipped / np.sqrt(mem + 1e-8)
    np.testing.assert_allclose(params["w"], p, rtol=1e-5)


def test_training_reduces_loss_on_a_tiny_text():
    text = "the cat sat on the mat:\n" * 40
    vocab = charrnn.Vocabulary.from_text(text)
    data = vocab.encode(text)
    cfg = charrnn.TrainConfig(hidden=16, seq_length=10, batch_size=4, optimizer="adam",
                              learning_rate=0.02, steps=150, chunks_per_call=10)
    start = charrnn.evaluate(charrnn.init_params(jax.random.key(0), len(vocab), 16), data, 4, 10)
    params, progress = charrnn.fit(data, len(vocab), cfg)
    assert progress.step == 150 and progress.chars_per_sec > 0
    assert charrnn.evaluate(params, data, 4, 10) < 0.5 * start


def test_save_load_round_trip_and_reference_style_tables(tmp_path, tiny):
    vocab, params = tiny
    charrnn.save(tmp_path / "m.npz", params, vocab)
    loaded, loaded_vocab = charrnn.load(tmp_path / "m.npz")
    assert loaded_vocab == vocab
    for name in charrnn.PARAM_NAMES:
        np.testing.assert_array_equal(loaded[name], params[name])
    # The assignment's snapshot stores the table as a dict, not as 'chars'.
    np.savez(tmp_path / "ref.npz", **{k: np.asarray(v) for k, v in params.items()},
             char_to_ix=np.array({c: i for i, c in enumerate(vocab.chars)}, dtype=object))
    assert charrnn.load(tmp_path / "ref.npz")[1] == vocab


def test_load_rejects_other_files_clearly(tmp_path, tiny):
    vocab, params = tiny
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(UserError, match="missing Wxh"):
        charrnn.load(tmp_path / "other.npz")
    bad = {**{k: np.asarray(v) for k, v in params.items()}, "Whh": np.zeros((3, 3))}
    np.savez(tmp_path / "bad.npz", **bad, chars=np.array(list(vocab.chars)))
    with pytest.raises(UserError, match="inconsistent shapes: Whh"):
        charrnn.load(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(UserError, match="cannot read snapshot"):
        charrnn.load(tmp_path / "junk.npz")
