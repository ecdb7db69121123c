"""Compile the C load generator with the system compiler, once per source change.

Why compile at run time: the generator must keep up with servers that deliver a
million lines a second, which Python cannot on this machine; building it here
(like redis-benchmark or memtier ship with their servers) keeps the repository
free of binaries and the result matched to the machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("bench")

SOURCE = Path(__file__).with_name("loadgen.c")
BUILD_DIR = Path(__file__).with_name("build")  # gitignored (build/)
CFLAGS = ("-O2", "-g", "-Wall", "-Wextra", "-std=gnu11")


def compiler() -> str:
    """The C compiler to use: $CC, else gcc, else cc."""
    for name in (os.environ.get("CC"), "gcc", "cc"):
        if name and shutil.which(name):
            return name
    raise RuntimeError("no C compiler found: install gcc (scripts/install-system-deps.sh bench)")


def build(force: bool = False) -> Path:
    """Return the path of the compiled generator, compiling it if the source changed."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    binary = BUILD_DIR / f"loadgen-{digest}"
    if binary.exists() and not force:
        return binary
    BUILD_DIR.mkdir(exist_ok=True)
    tmp = binary.with_suffix(".tmp")
    cmd = [compiler(), *CFLAGS, "-o", str(tmp), str(SOURCE)]
    log.info("compiling the load generator: %s", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"compiling {SOURCE.name} failed:\n{result.stderr}")
    tmp.replace(binary)
    for old in BUILD_DIR.glob("loadgen-*"):  # keep only the current build
        if old != binary:
            old.unlink(missing_ok=True)
    return binary
