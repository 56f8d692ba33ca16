"""The entry point of every script: absl's app with one ``error: …`` line (exit status 2) for
a UserError instead of a traceback, and list flags parsed with one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from absl import app, flags
from absl import logging as absl_logging

from jaxcolor.errors import UserError

FLAGS = flags.FLAGS


def parse_list(flag: str, text: str, kind: type = int) -> list:
    """``"100,50"`` → [100, 50] (``kind`` int or float), or a UserError naming the flag."""
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--{flag}={text!r} must be a comma-separated list of "
                        f"{kind.__name__}s.") from None
    if not values or min(values) <= 0:
        raise UserError(f"--{flag}={text!r} must list positive numbers.")
    return values


def run_main(main: Callable[[list[str]], None], argv: list[str]) -> int:
    """Call ``main(argv)`` (the flags already parsed); a UserError becomes one ``error: …``
    line on stderr and exit status 2."""
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


def run(main: Callable[[list[str]], None]) -> None:
    """``absl.app.run`` with :func:`run_main`: a UserError is one line, no traceback."""

    def guarded(argv: list[str]) -> None:
        if not FLAGS["verbosity"].present:  # Orbax logs every checkpoint step at INFO
            absl_logging.set_verbosity(absl_logging.WARNING)
        sys.exit(run_main(main, argv))

    # jax logs at INFO that it found no TPU on every CPU/GPU start; keep the console for results.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    app.run(guarded)
