"""q6(a): which hyper-parameters matter — CNN colourization, one knob varied at a time around
the defaults (learning rate, batch size, filters, kernel).

    python experiments/q6a_hyperparameters.py --image_dir=../shared/data/cifar10-jpeg
"""

from absl import flags

from answers.q6 import hyperparameter_notes
from jaxcolor import app
from jaxcolor.runner import Hooks, cli, run_grid

cli.define_flags(default_model="cnn")
flags.DEFINE_string("learning_rates", "0.01,0.001,0.0001", "Learning rates to try.")
flags.DEFINE_string("batch_sizes", "50", "Other batch sizes to try.")
flags.DEFINE_string("num_filters_list", "16", "Other NF values to try.")
flags.DEFINE_string("kernels", "5", "Other kernel sizes to try.")


def main(argv: list[str]) -> None:
    del argv
    base = cli.config_from_flags("q6a_hyperparameters")
    knobs = {"learning_rate": app.parse_list("learning_rates", flags.FLAGS.learning_rates, float),
             "batch_size": app.parse_list("batch_sizes", flags.FLAGS.batch_sizes),
             "num_filters": app.parse_list("num_filters_list", flags.FLAGS.num_filters_list),
             "kernel": app.parse_list("kernels", flags.FLAGS.kernels)}
    configs = [base]
    for knob, values in knobs.items():
        configs += [base.replace(**{knob: value}) for value in values
                    if base.replace(**{knob: value}) not in configs]
    run_grid(configs, "q6(a) — hyper-parameters, one at a time around the defaults",
             hooks=Hooks(at_end=lambda runs, out: hyperparameter_notes([r.row for r in runs])))


if __name__ == "__main__":
    app.run(main)
