"""q8 recipe: a training recipe beyond the assignment, each ingredient over several seeds
(constant rate, cosine decay, a 3× peak after a warm-up epoch, random flips). Each ingredient
fixes its learning rate (--learning_rate is not used).

    python experiments/q8_recipe.py --image_dir=../shared/data/cifar10-jpeg [--seeds=0,1,2]
"""

from absl import flags

from answers import q8
from jaxcolor import app
from jaxcolor.errors import UserError
from jaxcolor.runner import Hooks, cli, run_grid

EXPERIMENT = "q8_recipe"
cli.define_flags(default_model="unet_transpose")
flags.DEFINE_string("seeds", "0,1,2", "Training seeds of every ingredient.")
flags.DEFINE_string("ingredients", ",".join(q8.INGREDIENTS),
                    f"Ingredients to run, of: {', '.join(q8.INGREDIENTS)}.")


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags(EXPERIMENT)
    names = app.parse_list("ingredients", flags.FLAGS.ingredients, str)
    unknown = [name for name in names if name not in q8.INGREDIENTS]
    if unknown:
        raise UserError(f"--ingredients: unknown {', '.join(unknown)}; use some of "
                            f"{', '.join(q8.INGREDIENTS)}.")
    configs = [cfg.replace(seed=seed, **q8.INGREDIENTS[name]) for name in names
               for seed in app.parse_list("seeds", flags.FLAGS.seeds, allow_zero=True)]
    run_grid(configs, "q8 — a training recipe, ingredient by ingredient over seeds",
             hooks=Hooks(at_end=lambda runs, out: q8.recipe_notes([r.row for r in runs])))


if __name__ == "__main__":
    app.run(main)
