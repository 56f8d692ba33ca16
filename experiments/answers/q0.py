"""q0's measured answers: linear regression two ways, logistic regression, and Nielsen's network
trained by hand-written backpropagation (checked against ``jax.grad``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from jaxcolor.results import markdown_table
from jaxcolor.scratch import network, regression
from jaxcolor.scratch.datasets import Digits, regression_data

EXPERIMENT = "q0_from_scratch"


def linear_regression(steps: int) -> tuple[dict[str, Any], np.ndarray]:
    """scikit-learn's diabetes data: the normal equations (float64) and ``steps`` of gradient
    descent at 1/L (float32) from 0; their weights, costs and the GD cost curve."""
    features, target = regression_data("diabetes")
    x = regression.design_matrix(features)
    start = time.perf_counter()
    exact = regression.normal_equations(x, target)
    step = regression.largest_stable_step(x)
    weights, costs = regression.linear_gradient_descent(
        jnp.asarray(x, jnp.float32), jnp.asarray(target, jnp.float32), step, steps)
    weights, costs = np.asarray(weights, np.float64), np.asarray(costs)
    return {"experiment": EXPERIMENT, "model": "linear_regression", "task": "diabetes",
            "loss": "mse", "learning_rate": step, "epochs": steps,
            "train_loss": float(regression.mean_squared_error(weights, x, target)),
            "closed_form_loss": float(regression.mean_squared_error(exact, x, target)),
            "weights_max_abs_difference": float(np.max(np.abs(weights - exact))),
            "weights_max_abs": float(np.max(np.abs(exact))),
            "condition_number": float(np.linalg.cond(x.T @ x)),
            "wall_seconds": time.perf_counter() - start}, costs


def logistic_regression(steps: int, learning_rate: float, seed: int
                        ) -> tuple[dict[str, Any], np.ndarray]:
    """scikit-learn's breast-cancer data (80/20 split by ``seed``, standardised on the training
    part): gradient descent on the mean cross-entropy; accuracies, and the hand-written
    gradient against ``jax.grad`` at the start."""
    features, target = regression_data("breast_cancer")
    order = np.random.default_rng(seed).permutation(len(target))
    cut = int(0.8 * len(target))
    train, test = order[:cut], order[cut:]
    mean, scale = features[train].mean(axis=0), features[train].std(axis=0)
    x_train, x_test = (jnp.asarray(regression.design_matrix(features[rows], mean, scale),
                                   jnp.float32) for rows in (train, test))
    y_train, y_test = (jnp.asarray(target[rows], jnp.float32) for rows in (train, test))
    start = time.perf_counter()
    w0 = jnp.zeros(x_train.shape[1]) + 0.01
    hand = regression.logistic_gradient(w0, x_train, y_train)
    auto = jax.grad(regression.logistic_cost)(w0, x_train, y_train)
    weights, costs = regression.logistic_gradient_descent(x_train, y_train, learning_rate, steps)

    def accuracy(x, y):
        return 100.0 * float(jnp.mean((x @ weights > 0) == (y > 0.5)))

    return {"experiment": EXPERIMENT, "model": "logistic_regression", "task": "breast_cancer",
            "loss": "cross_entropy", "learning_rate": learning_rate, "epochs": steps,
            "seed": seed, "train_loss": float(regression.logistic_cost(weights, x_train, y_train)),
            "val_loss": float(regression.logistic_cost(weights, x_test, y_test)),
            "train_accuracy": accuracy(x_train, y_train),
            "test_accuracy": accuracy(x_test, y_test),
            "gradient_max_relative_error": float(jnp.max(jnp.abs(hand - auto))
                                                 / jnp.max(jnp.abs(auto))),
            "wall_seconds": time.perf_counter() - start}, np.asarray(costs)


def _one_hot(labels: np.ndarray) -> jax.Array:
    return jax.nn.one_hot(labels, 10, dtype=jnp.float32)


def _accuracy(params: network.Params, x: np.ndarray, y: np.ndarray) -> float:
    return 100.0 * float(np.mean(np.asarray(network.predict(params, x)) == y))


def _median_epoch_seconds(params, x, y, key, batch_size, learning_rate, form, repeats=3):
    jax.block_until_ready(network.sgd_epoch(params, x, y, key, batch_size, learning_rate, form))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(network.sgd_epoch(params, x, y, key, batch_size, learning_rate,
                                                form))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def train_network(data: Digits, hidden: Sequence[int], epochs: int, batch_size: int,
                  learning_rate: float, seed: int, log: Callable[[str], None]
                  ) -> tuple[dict[str, Any], network.Params]:
    """Nielsen's SGD with the matrix-based backpropagation; per epoch the quadratic cost on
    both sets and the test accuracy. Before training: the hand-written gradients of a
    mini-batch (per-example loop and matrix form) against ``jax.grad`` of the quadratic cost,
    and one epoch's time in each form."""
    sizes = [data.train_x.shape[1], *hidden, 10]
    init_key, data_key = jax.random.split(jax.random.key(seed))
    params = network.init(sizes, init_key)
    x, y = jnp.asarray(data.train_x), _one_hot(data.train_y)
    batch = (x[:batch_size], y[:batch_size])
    reference = jax.grad(network.quadratic_cost)(params, *batch)
    errors = {form: network.max_relative_error(gradient(params, *batch), reference)
              for form, gradient in network.GRADIENTS.items()}
    seconds = {form: _median_epoch_seconds(params, x, y, data_key, batch_size, learning_rate,
                                           form) for form in network.GRADIENTS}
    log(f"network {sizes}: hand-written backprop vs jax.grad, max relative error "
        f"{max(errors.values()):.1e}; an epoch takes {1e3 * seconds['loop']:.1f} ms one example "
        f"at a time, {1e3 * seconds['matrix']:.1f} ms as matrices")
    history, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        params = network.sgd_epoch(params, x, y, jax.random.fold_in(data_key, epoch),
                                   batch_size, learning_rate)
        record = {"epoch": epoch,
                  "train_loss": float(network.quadratic_cost(params, x, y)),
                  "val_loss": float(network.quadratic_cost(params, data.test_x,
                                                           _one_hot(data.test_y))),
                  "val_accuracy": _accuracy(params, data.test_x, data.test_y),
                  "seconds": time.perf_counter() - epoch_start}
        history.append(record)
        log(f"epoch {epoch:3d}/{epochs}  cost {record['train_loss']:.4f}  test cost "
            f"{record['val_loss']:.4f}  test accuracy {record['val_accuracy']:.2f}%")
    final = history[-1]
    return {"experiment": EXPERIMENT, "model": "network_" + "-".join(map(str, sizes)),
            "task": data.name, "loss": "quadratic", "epochs": epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "seed": seed, "train_loss": final["train_loss"],
            "val_loss": final["val_loss"], "val_accuracy": final["val_accuracy"],
            "test_accuracy": final["val_accuracy"],
            "backprop_max_relative_error": max(errors.values()),
            "backprop_relative_error_by_form": errors,
            "epoch_seconds_by_form": seconds,
            "matrix_speedup": seconds["loop"] / seconds["matrix"],
            "train_images_per_sec": len(x) / seconds["matrix"],
            "wall_seconds": time.perf_counter() - start, "history": history}, params


def write_figures(out: Path, linear_costs: np.ndarray, closed_form_loss: float,
                  logistic_costs: np.ndarray, network_row: dict[str, Any],
                  params: network.Params, data: Digits) -> None:
    """curves.png (the two gradient descents' costs; the network's test accuracy per epoch) and
    misclassified.png (test digits the network gets wrong, with its answer)."""
    fig = Figure(figsize=(13, 3.8))
    linear, logistic, accuracy = fig.subplots(1, 3)
    resolution = float(np.finfo(np.float32).eps)  # the costs are float32 sums
    linear.semilogy(np.maximum((linear_costs - closed_form_loss) / closed_form_loss,
                               resolution / 2))
    linear.axhline(resolution, color="grey", linestyle="--", label="float32 resolution")
    linear.legend(fontsize=8)
    linear.set(xlabel="gradient-descent step", ylabel="(cost − closed-form cost) / cost",
               title="Linear regression (diabetes)")
    logistic.plot(logistic_costs)
    logistic.set(xlabel="gradient-descent step", ylabel="mean cross-entropy",
                 title="Logistic regression (breast cancer)")
    history = network_row["history"]
    accuracy.plot([r["epoch"] for r in history], [r["val_accuracy"] for r in history], "o-",
                  markersize=3)
    accuracy.set(xlabel="epoch", ylabel="test accuracy (%)", title=network_row["model"])
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    predicted = np.asarray(network.predict(params, data.test_x))
    wrong = np.flatnonzero(predicted != data.test_y)[:24]
    columns = max(1, min(12, len(wrong)))
    rows = max(1, -(-len(wrong) // columns))
    fig = Figure(figsize=(columns, 1.2 * rows + 0.3))
    for index, row in enumerate(wrong):
        axis = fig.add_subplot(rows, columns, index + 1)
        axis.imshow(data.test_x[row].reshape(data.side, data.side), cmap="gray_r")
        axis.set_title(f"{data.test_y[row]}→{predicted[row]}", fontsize=8)
        axis.axis("off")
    fig.suptitle("Misclassified test digits (true → predicted)", fontsize=9)
    fig.savefig(out / "misclassified.png", dpi=110)


def notes(linear: dict[str, Any], logistic: dict[str, Any], net: dict[str, Any]) -> str:
    """results.md: each part's numbers and what they show."""
    seconds = net["epoch_seconds_by_form"]
    return "\n".join([
        "# q0 — from scratch: regression two ways, and backpropagation by hand", "",
        "## Linear regression (scikit-learn's diabetes data, 442 × 10, standardised)", "",
        markdown_table([linear], [("train_loss", "GD cost"), ("closed_form_loss",
                                                              "closed-form cost"),
                                  ("weights_max_abs_difference", "max |w_GD − w_exact|"),
                                  ("weights_max_abs", "max |w_exact|"),
                                  ("epochs", "GD steps"), ("learning_rate", "step (1/L)"),
                                  ("condition_number", "cond(XᵀX)")]), "",
        f"Gradient descent from 0 at the largest stable step reaches the normal equations' "
        f"weights to {linear['weights_max_abs_difference']:.1e} (weights up to "
        f"{linear['weights_max_abs']:.0f}); the slowest direction of the cost shrinks by "
        f"1 − 1/cond per step, so cond(XᵀX) = {linear['condition_number']:.0f} sets how many "
        "steps that takes (curves.png, left).", "",
        "## Logistic regression (scikit-learn's breast-cancer data, 569 × 30, 80/20 split)", "",
        markdown_table([logistic], [("train_accuracy", "train acc %"),
                                    ("test_accuracy", "test acc %"), ("train_loss", "train cost"),
                                    ("val_loss", "test cost"), ("epochs", "GD steps"),
                                    ("learning_rate", "step"),
                                    ("gradient_max_relative_error",
                                     "Xᵀ(σ(Xw) − y)/n vs jax.grad")]), "",
        f"## Nielsen's network on {net['task']} ({net['model']}, sigmoid, quadratic cost, "
        f"mini-batch SGD)", "",
        markdown_table([net], [("epochs", "epochs"), ("batch_size", "mini-batch"),
                               ("learning_rate", "η"), ("test_accuracy", "test acc %"),
                               ("val_loss", "test cost"),
                               ("backprop_max_relative_error", "BP1–BP4 vs jax.grad")]), "",
        f"The gradients of BP1–BP4, one example at a time and as matrices over the mini-batch, "
        f"agree with `jax.grad` of the same cost to "
        f"{net['backprop_relative_error_by_form']['loop']:.1e} and "
        f"{net['backprop_relative_error_by_form']['matrix']:.1e} (max relative error). An epoch "
        f"took {seconds['loop']:.3f} s one example at a time and {seconds['matrix']:.3f} s as "
        f"matrices: {net['matrix_speedup']:.1f}× faster, because each mini-batch becomes a few "
        "matrix products instead of many vector ones. Test accuracy per epoch: curves.png "
        "(right); the digits it gets wrong: misclassified.png.", ""])
