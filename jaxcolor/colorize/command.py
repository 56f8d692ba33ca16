"""The ``jaxcolor`` console command.

    jaxcolor colorize IN... --out DIR --checkpoint PATH [--working_side N] [--temperature T]

colourizes greyscale or colour photos of any size with a Lab colorizer file (written by
``experiments/q7_lab.py``): each IN becomes DIR/<name>.png, the same size, its own L kept.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from jaxcolor.data import read_image
from jaxcolor.errors import UserError

DEFAULT_CHECKPOINT = Path("results") / "q7_lab" / "colorizer.msgpack"
DEFAULT_WORKING_SIDE = 128


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="jaxcolor", description="jaxcolor's command line: colourize photos with a trained "
                                     "Lab model (jaxcolor colorize --help).")
    commands = root.add_subparsers(dest="command", required=True)
    colorize = commands.add_parser(
        "colorize", help="colourize photos of any size with a trained Lab model",
        description="Colourize greyscale or colour photos (a colour photo's colours are "
                    "replaced). The model predicts ab from L; the photo's own L is kept at "
                    "full resolution.")
    colorize.add_argument("inputs", nargs="+", metavar="IN", help="image files (PNG, JPEG, …)")
    colorize.add_argument("--out", required=True, metavar="DIR", help="output folder")
    colorize.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), metavar="PATH",
                          help=f"colorizer file from experiments/q7_lab.py "
                               f"(default: {DEFAULT_CHECKPOINT})")
    colorize.add_argument("--working_side", type=int, default=DEFAULT_WORKING_SIDE, metavar="N",
                          help="the model sees the photo scaled to this longer side, its ab is "
                               "scaled back up (0: full size; default %(default)s)")
    colorize.add_argument("--temperature", type=float, default=None, metavar="T",
                          help="annealed-mean temperature of a bins model (default: the "
                               "file's; q7 writes the one calibrated on training images)")
    return root


def colorize_command(args: argparse.Namespace) -> int:
    from jaxcolor.colorize.colorizer import (  # jax loads only when needed
        colorize_lab,
        load_colorizer,
    )

    if folders := [name for name in args.inputs if Path(name).is_dir()]:
        raise UserError(f"{folders[0]} is a folder; pass the image files themselves, e.g. "
                        f"jaxcolor colorize {Path(folders[0]) / '*.jpg'} --out {args.out}.")
    if args.working_side < 0:
        raise UserError(f"--working_side={args.working_side} must be 0 (full size) or positive.")
    if args.temperature is not None and not 0.0 <= args.temperature <= 10.0:
        raise UserError(f"--temperature={args.temperature} must lie in [0, 10].")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out={out} cannot be created: {err.strerror or err}.") from None
    colorizer = load_colorizer(args.checkpoint)
    failures = 0
    for name in args.inputs:
        path = Path(name)
        target = out / f"{path.stem}.png"
        try:
            photo = read_image(path)
            result = colorize_lab(colorizer, photo, args.working_side, args.temperature)
            Image.fromarray(result).save(target)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            failures += 1
            continue
        except OSError as err:
            print(f"error: {target}: cannot write it ({err.strerror or err}).", file=sys.stderr,
                  flush=True)
            failures += 1
            continue
        print(f"{path} ({photo.shape[1]}x{photo.shape[0]}) → {target}", flush=True)
    if failures:
        print(f"{failures} of {len(args.inputs)} images failed.", file=sys.stderr, flush=True)
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return colorize_command(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
