"""q6(d): colourize photographs larger than 32×32 with a model trained on 32×32 images — the
networks are fully convolutional. Photos: scikit-image's astronaut and coffee, at full size and
scaled down ×4 (closer to the training images' object scale).

    python experiments/q6d_large_images.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

import numpy as np
from absl import flags

from jaxcolor import cli
from jaxcolor.colorize import colourize_photos
from jaxcolor.errors import UserError
from jaxcolor.experiment import RunOutput, model_for, run_grid
from jaxcolor.tasks import TaskData

cli.define_flags(default_model="unet")
flags.DEFINE_string("photos", "astronaut,coffee", "scikit-image sample photos to colourize.")
SCALES = (0.25, 1.0)


def load_photos(names: list[str]) -> dict[str, np.ndarray]:
    try:
        from skimage import data as samples
    except ImportError:
        raise UserError("q6d needs scikit-image for its sample photos: "
                        "pip install scikit-image") from None
    unknown = [name for name in names if not hasattr(samples, name)]
    if unknown:
        raise UserError(f"--photos: {', '.join(unknown)} not in skimage.data.")
    return {name: getattr(samples, name)()[..., :3] for name in names}


def main(argv: list[str]) -> None:
    del argv
    cfg = cli.config_from_flags("q6d_large_images")
    photos = load_photos([name.strip() for name in flags.FLAGS.photos.split(",")])

    def notes(runs: list[RunOutput], data: TaskData) -> str:
        run = runs[-1]
        rows, text = colourize_photos(model_for(run.config, data), run.state, data.palette,
                                      photos, SCALES, Path(cfg.output_dir))
        run.row["large_images"] = rows
        return text

    run_grid([cfg], "q6(d) — colourizing images larger than 32×32", notes=notes)


if __name__ == "__main__":
    cli.run(main)
