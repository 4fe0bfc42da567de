"""The kit's checkout as the package sees it: where compose/, the lab's settings and topology, the
generated directories and .cache/ are.

The package never derives these from its own location (an installed copy, e.g. in the simulator image,
has no checkout around it): the CLI and the tests hand a `Workspace` in, found with `Workspace.find()`
from $LLMOBS_ROOT or the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT_VARIABLE = "LLMOBS_ROOT"
_MARKERS = ("pyproject.toml", "compose/compose.yaml")


class WorkspaceError(LookupError):
    pass


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace:
        """$LLMOBS_ROOT, else the nearest directory at or above `start` (default: the working directory)
        that holds the kit (pyproject.toml and compose/compose.yaml)."""
        if os.environ.get(ROOT_VARIABLE):
            return cls(Path(os.environ[ROOT_VARIABLE]).resolve())
        here = (start or Path.cwd()).resolve()
        for directory in (here, *here.parents):
            if all((directory / marker).is_file() for marker in _MARKERS):
                return cls(directory)
        raise WorkspaceError(f"{here} is not inside a checkout of the kit: run from the checkout or set "
                             f"{ROOT_VARIABLE} to it")

    @classmethod
    def find_or_cwd(cls) -> Workspace:
        """`find()`, or the working directory where no checkout is around it (an installed copy)."""
        try:
            return cls.find()
        except WorkspaceError:
            return cls(Path.cwd().resolve())

    # ------------------------------------------------------------------ the checkout's parts
    @property
    def compose_dir(self) -> Path:
        return self.root / "compose"

    @property
    def cache_dir(self) -> Path:
        """Machine-local state: the images `llmobs setup` chose, wheels, the lab's Grafana password."""
        return self.root / ".cache"

    @property
    def images_env(self) -> Path:
        return self.cache_dir / "images.env"

    @property
    def lab_settings(self) -> Path:
        return self.compose_dir / "lab-settings.yml"

    @property
    def lab_topology(self) -> Path:
        return self.compose_dir / "lab-topology.yml"

    def relative(self, path: Path) -> str:
        """`path` relative to the checkout (for messages and generated headers)."""
        return path.resolve().relative_to(self.root).as_posix()
