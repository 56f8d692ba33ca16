"""A tfds dataset of jaxcolor's own, downloaded and prepared on first use, or one line saying why
not.

tfds's download manager shows progress, checks each file's registered size and SHA-256, and
renames a download (and a prepared dataset) into place only when it is complete; here the
preparation is held to one process of this machine at a time, an offline machine is told so in
seconds (tfds itself retries for minutes), and each failure becomes one UserError that leaves
nothing partial behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jaxcolor.cache import cache_dir
from jaxcolor.errors import UserError


def prepared(builder_class: type, data_dir: str | None, *, title: str, host: str,
             offline_hint: str) -> Any:
    """A builder of ``builder_class`` in ``data_dir`` (None: tfds's default), prepared.

    ``title`` names the dataset in messages; ``host`` is where its files come from (probed
    first); ``offline_hint`` is the offline user's alternative, e.g. "use --image_dir=PATH".
    """
    builder = builder_class(data_dir=data_dir, file_format="array_record")
    if builder.is_prepared():
        return builder
    with _lock(cache_dir("tfds") / f"{builder.name}.lock"):
        builder = builder_class(data_dir=data_dir, file_format="array_record")
        if not builder.is_prepared():  # another process may have prepared it meanwhile
            require_reachable(host, title, offline_hint)
            _download_and_prepare(builder, title)
    return builder


def examples(builder: Any, split: str, chunk: int = 1024) -> Iterator[dict]:
    """The records of a prepared builder's split, in order, read ``chunk`` at a time."""
    import tensorflow_datasets as tfds

    source = tfds.data_source(builder.name, split=split, data_dir=builder.data_dir_root,
                              builder_kwargs={"file_format": "array_record"})
    for start in range(0, len(source), chunk):
        yield from source.__getitems__(range(start, min(start + chunk, len(source))))


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _download_and_prepare(builder: Any, title: str) -> None:
    import requests
    import tensorflow_datasets as tfds

    try:
        builder.download_and_prepare()
    except tfds.download.download_manager.NonMatchingChecksumError as err:
        raise UserError(
            f"a downloaded file of {title} does not match its registered size and SHA-256 (a "
            f"damaged transfer, or a proxy's page?); it was removed: run the same command "
            f"again to download it anew.") from err
    except (requests.RequestException, ConnectionError, tfds.download.DownloadError) as err:
        raise UserError(
            f"downloading {title} failed ({type(err).__name__}: {err}); the partial download "
            f"was removed: run the same command again.") from err
    except OSError as err:
        raise UserError(f"preparing {title} in {builder.data_dir} failed: {err}. Nothing "
                        f"partial was kept; free the space or fix the folder and run "
                        f"again.") from err
    finally:
        _remove_partial_downloads(builder)


def _remove_partial_downloads(builder: Any) -> None:
    """tfds downloads into ``<name>.tmp.<uuid>`` folders and renames the file out of them once
    it is complete and checked; any such folder left after a download ended is partial."""
    downloads = Path(os.fspath(builder.data_dir_root)) / "downloads"
    for folder in downloads.glob("**/*.tmp.*"):
        shutil.rmtree(folder, ignore_errors=True)


def require_reachable(host: str, title: str, offline_hint: str, timeout: float = 5.0) -> None:
    """Fail fast when ``host`` (port 443) cannot be reached."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as err:
        raise UserError(
            f"tfds cannot download {title} (cannot reach {host}: {err}). Connect to the "
            f"internet, set TFDS_DATA_DIR to a folder where it was prepared before, or "
            f"{offline_hint}.") from err
