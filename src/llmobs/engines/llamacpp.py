"""The lab's real llama.cpp server: its image's build context and pins (compose/llamacpp/Dockerfile).

The Dockerfile is the one source of the pins (its `ARG LLAMACPP_VERSION=`); this module reads them
from there and puts the Dockerfile and the generated model side by side in a build context.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from llmobs.engines.tiny_gguf import DEFAULT_MODEL, TinyLlama, write_tiny_gguf

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "compose" / "llamacpp" / "Dockerfile"
MODEL_FILE = "tiny-llama.gguf"  # the name the Dockerfile COPYs
PORT = 8080
# The build arg that names the Debian sid image to build FROM.
BASE_ARG = "BASE_IMAGE"


def pinned(arg: str = "LLAMACPP_VERSION", dockerfile: Path = DOCKERFILE) -> str:
    """The Debian version a build arg of the Dockerfile pins, e.g. `1:0.7.0+dfsg-2`."""
    match = re.search(rf"^ARG {arg}=(\S+)$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if match is None:
        raise ValueError(f"{dockerfile} has no `ARG {arg}=<version>` line")
    return match[1]


def upstream_version(debian_version: str | None = None) -> str:
    """llama.cpp's own version inside a Debian version: `1:0.7.0+dfsg-2` -> `0.7.0`."""
    version = debian_version or pinned()
    return version.split(":", 1)[-1].split("+", 1)[0].split("-", 1)[0]


def build_context(directory: Path, spec: TinyLlama = DEFAULT_MODEL) -> Path:
    """Fill `directory` with what `docker build` needs: the Dockerfile and the model it bakes in."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(DOCKERFILE, directory / "Dockerfile")
    write_tiny_gguf(directory / MODEL_FILE, spec)
    return directory
