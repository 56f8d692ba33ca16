"""A Cloud Storage stand-in on localhost for gs:// tests: gcp-storage-emulator, completed with
the object generations that Orbax's array writer (TensorStore's GCS driver) relies on.

The emulator ignores ``ifGenerationMatch``/``ifGenerationNotMatch`` and sends no
``x-goog-generation`` header with object data; TensorStore then reads generation 0 for an
existing OCDBT manifest and refuses its next conditional write ("Malformed StorageGeneration"),
which failed checkpoint saves at random. Cloud Storage's documented behaviour is added around
the emulator's own handlers: preconditions on reads, uploads and deletes (304 / 412) and the
generation header on reads. The emulator serves one request at a time, so a check and the
write after it cannot interleave with another request.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from http import HTTPStatus

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

Handler = Callable[..., None]


def _generation(storage, bucket: str, name: str) -> int | None:
    try:
        return int(storage.get_file_obj(bucket, name)["generation"])
    except NotFound:
        return None


def _first(request, parameter: str) -> int | None:
    values = request.query.get(parameter)
    return int(values[0]) if values else None


def _unmet(request, current: int | None) -> HTTPStatus | None:
    """Cloud Storage's answer when a precondition fails (generation 0: "no live object")."""
    match, not_match = _first(request, "ifGenerationMatch"), _first(request, "ifGenerationNotMatch")
    if match is not None and match != (current or 0):
        return HTTPStatus.PRECONDITION_FAILED
    if not_match is not None and current is not None and not_match == current:
        return HTTPStatus.NOT_MODIFIED
    return None


def _read(handler: Handler) -> Handler:
    def read(request, response, storage, *args, **kwargs):
        bucket, name = request.params["bucket_name"], request.params["object_id"]
        current = _generation(storage, bucket, name)
        if current is not None and (status := _unmet(request, current)):
            response.status = status
            return
        handler(request, response, storage, *args, **kwargs)
        if current is not None:
            response["x-goog-generation"] = str(current)
    return read


def _upload(handler: Handler) -> Handler:
    def upload(request, response, storage, *args, **kwargs):
        names = request.query.get("name")
        if names:
            request.data  # noqa: B018 — consume the body even when refusing the upload
            current = _generation(storage, request.params["bucket_name"], names[0])
            if status := _unmet(request, current):
                response.status = status
                return
        handler(request, response, storage, *args, **kwargs)
    return upload


def _delete(handler: Handler) -> Handler:
    def delete(request, response, storage, *args, **kwargs):
        current = _generation(storage, request.params["bucket_name"],
                              request.params["object_id"])
        if current is not None and (status := _unmet(request, current)):
            response.status = status
            return
        handler(request, response, storage, *args, **kwargs)
    return delete


_WRAPPERS = {objects.download: _read, objects.get: _read, objects.insert: _upload,
             objects.delete: _delete}


def _complete_the_emulator() -> None:
    for _, handlers in emulator.HANDLERS:
        for method, handler in handlers.items():
            if handler in _WRAPPERS:
                handlers[method] = _WRAPPERS[handler](handler)


_complete_the_emulator()


@contextlib.contextmanager
def serve(bucket: str) -> Iterator[str]:
    """Runs the stand-in with an empty ``bucket``; yields its URL (for ``STORAGE_EMULATOR_HOST``,
    which gcsfs reads, and ``TENSORSTORE_GCS_HTTP_URL``)."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    server = emulator.create_server("localhost", port, in_memory=True, default_bucket=bucket)
    server.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.stop()
