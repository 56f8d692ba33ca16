"""q6(d): colourize photographs larger than 32×32 with a model trained on 32×32 images — the
networks are fully convolutional. Photos: scikit-image's astronaut and coffee, at full size and
scaled down ×4 (closer to the training images' object scale).

    python experiments/q6d_large_images.py --image_dir=../shared/data/cifar10-jpeg
"""

from pathlib import Path

import numpy as np
from absl import flags

from answers.q6d import colourize_photos, large_images_section
from jaxcolor import app
from jaxcolor.errors import UserError
from jaxcolor.models import build_model
from jaxcolor.runner import Hooks, RunOutput, cli, run_grid

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

    def large_images(run: RunOutput, out: Path) -> dict:
        return {"large_images": colourize_photos(build_model(run.spec), run.state,
                                                 run.task_data.task.palette, photos, SCALES, out)}

    run_grid([cfg], "q6(d) — colourizing images larger than 32×32", hooks=Hooks(
        after_run=large_images,
        at_end=lambda runs, out: large_images_section(runs[-1].row["large_images"])))


if __name__ == "__main__":
    app.run(main)
