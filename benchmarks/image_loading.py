"""Decoding a split of an image folder: a plain loop, ``data.in_order`` on threads (what
``data.load_category`` does), and a pool of worker processes (each worker imports only
``jaxcolor.data``: numpy and Pillow), median seconds of ``--repeats`` runs each.

    python benchmarks/image_loading.py --image_dir=../shared/data/cifar10-jpeg [--category=horse]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

from jaxcolor import data


def read_chunk(paths: list[Path]) -> list:
    return [data.read_image(path) for path in paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_dir", required=True)
    parser.add_argument("--category", default="horse")
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = sorted((Path(args.image_dir) / args.split / args.category).iterdir())
    workers = os.cpu_count() or 1
    chunks = [files[i:i + 256] for i in range(0, len(files), 256)]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded (JAX) parent
    with context.Pool(workers) as pool:
        pool.map(read_chunk, chunks[:workers])  # workers started and warm
        ways = {"plain loop": lambda: [data.read_image(path) for path in files],
                f"in_order, {workers} threads": lambda: list(data.in_order(data.read_image,
                                                                           files)),
                f"{workers} processes, 256 files a task": lambda: pool.map(read_chunk, chunks)}
        print(f"{len(files)} files of {args.image_dir}/{args.split}/{args.category}, "
              f"{workers} CPUs")
        for name, load in ways.items():
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                load()
                times.append(time.perf_counter() - start)
            print(f"{name}: {statistics.median(times):.3f} s", flush=True)
    start = time.perf_counter()
    with context.Pool(workers) as pool:
        pool.map(read_chunk, chunks)
    print(f"{workers} processes including their start: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
