"""The strict base model and the field types the settings, the catalog, the inventory and the simulators
share: one definition of a label name, a duration, an address or a port."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Input and output models: unknown keys are errors (a misspelt setting is reported, never ignored),
    and a validated value cannot be changed afterwards."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictAliased(Strict):
    """A strict model with fields whose YAML names are Python keywords (`for`, `from`, `class`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# A Prometheus duration with one unit, e.g. 30s, 5m, 6h, 30d.
DURATION_PATTERN = r"^[0-9]+(ms|s|m|h|d|w|y)$"
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
LabelValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:/-]+$")]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, description="e.g. 30s, 5m, 6h")]
Address = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", description="a host name or an IPv4 address")]
Port = Annotated[int, Field(ge=1, le=65535)]


def duration_seconds(duration: str) -> float:
    """Seconds in a one-unit Prometheus duration such as `5m` or `30d`."""
    match = re.fullmatch(DURATION_PATTERN, duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration such as 30s, 5m, 6h or 30d")
    return int(duration[: -len(match.group(1))]) * _DURATION_SECONDS[match.group(1)]
