"""q0: the foundations — linear regression two ways, logistic regression, and Nielsen's network
trained by hand-written backpropagation (BP1–BP4, checked against jax.grad).

    python experiments/q0_from_scratch.py --dataset=digits     # offline: scikit-learn's digits
    python experiments/q0_from_scratch.py                      # MNIST through tfds
"""

from pathlib import Path

from absl import flags

from answers import q0
from jaxcolor import app
from jaxcolor.results import prepare_output_dir, write_results, write_text_atomic
from jaxcolor.scratch.datasets import DATASETS

flags.DEFINE_enum("dataset", "mnist", list(DATASETS), "Digits for the network: mnist (tfds, "
                  "28×28) or digits (scikit-learn's shipped 8×8, offline).")
flags.DEFINE_string("hidden", "30", "Comma-separated hidden layer sizes.")
flags.DEFINE_integer("epochs", 30, "Network training epochs.")
flags.DEFINE_integer("batch_size", 10, "Mini-batch size.")
flags.DEFINE_float("learning_rate", 3.0, "SGD step η of the network.")
flags.DEFINE_integer("seed", 0, "PRNG seed (initialisation, shuffling, splits).")
flags.DEFINE_integer("regression_steps", 20000, "Gradient-descent steps of linear regression.")
flags.DEFINE_integer("logistic_steps", 5000, "Gradient-descent steps of logistic regression.")
flags.DEFINE_float("logistic_learning_rate", 0.5, "Gradient-descent step of logistic regression.")
flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir (default: tfds's own).")
flags.DEFINE_string("output_dir", None, f"Where results go (default: results/{q0.EXPERIMENT}).")


def main(argv: list[str]) -> None:
    del argv
    f = flags.FLAGS
    for name in ("epochs", "batch_size", "regression_steps", "logistic_steps"):
        if getattr(f, name) <= 0:
            raise app.UserError(f"--{name}={getattr(f, name)} must be a positive integer.")
    hidden = app.parse_list("hidden", f.hidden)
    out = prepare_output_dir(f.output_dir or f"results/{q0.EXPERIMENT}", q0.EXPERIMENT)
    data = (DATASETS[f.dataset](f.tfds_data_dir) if f.dataset == "mnist"
            else DATASETS[f.dataset](seed=f.seed))
    print(f"data: {len(data.train_x)} train / {len(data.test_x)} test {f.dataset} images")
    linear, linear_costs = q0.linear_regression(f.regression_steps)
    logistic, logistic_costs = q0.logistic_regression(f.logistic_steps,
                                                      f.logistic_learning_rate, f.seed)
    print(f"linear regression: GD vs normal equations, max weight difference "
          f"{linear['weights_max_abs_difference']:.1e}; logistic regression: test accuracy "
          f"{logistic['test_accuracy']:.1f}%")
    net, params = q0.train_network(data, hidden, f.epochs, f.batch_size, f.learning_rate,
                                   f.seed, print)
    q0.write_figures(out, linear_costs, linear["closed_form_loss"], logistic_costs, net,
                     params, data)
    write_results(out, [linear, logistic, net])
    write_text_atomic(out / "results.md", q0.notes(linear, logistic, net))
    print(f"wrote {Path(out) / 'results.md'}, results.json, curves.png and misclassified.png")


if __name__ == "__main__":
    app.run(main)
