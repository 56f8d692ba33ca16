"""jaxcolor.cpu.host_memory: freed large blocks are reused, not mapped and faulted in again."""

import json
import os
import platform
import subprocess
import sys

import pytest

# Allocates, touches and frees a 64 MiB block twice; prints the minor page faults of the second.
PROBE = """
import ctypes, json, resource, sys
from jaxcolor.cpu import host_memory
applied = host_memory.retain_freed_memory() if sys.argv[1] == "retain" else False
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def touch_and_free():
    block = libc.malloc(64 << 20)
    ctypes.memset(block, 1, 64 << 20)
    libc.free(block)
touch_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free()
print(json.dumps([applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]))
"""


def probe(mode: str, **env: str) -> tuple[bool, int]:
    output = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                            check=True, env={**os.environ, "JAX_PLATFORMS": "cpu", **env})
    applied, faults = json.loads(output.stdout.strip().splitlines()[-1])
    return applied, faults


@pytest.mark.slow  # a new Python process
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_retained_memory_is_reused_without_page_faults():
    assert probe("default") == (False, pytest.approx(16384, rel=0.2))  # 64 MiB of 4 KiB pages
    applied, faults = probe("retain")
    assert applied and faults < 100


@pytest.mark.slow  # a new Python process
def test_retaining_memory_can_be_switched_off():
    assert probe("retain", JAXCOLOR_RETAIN_MEMORY="0")[0] is False
