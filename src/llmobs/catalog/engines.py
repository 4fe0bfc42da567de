"""The catalog's engine models: each engine's endpoint and labels (engines.yaml) and the signals of the
engine-agnostic layer (recording_rules.yaml `engine_signals`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from llmobs import conventions
from llmobs.conventions import Engine
from llmobs.types import Port, Strict


class EngineInfo(Strict):
    title: str
    versions: str = Field(description="the releases the catalog's entries were checked against")
    source: str
    metrics_path: str = Field(pattern=r"^/")
    default_port: Port
    default_labels: tuple[str, ...] = Field(description="labels of the engine's series unless a metric says otherwise")
    model_label: str | None = Field(description="the label naming the served model; null when the engine has none")
    recordings: tuple[str, ...] = Field(min_length=1, description="tests/sim/data files of its real exposition")



class EngineSignal(Strict):
    """A series of the engine-agnostic layer: its expression on each engine that has it, and why the others
    do not. Templates: `<< by >>` (host label, instance, model_name), `<< stuck_window >>`."""

    record: str
    unit: str
    meaning: str
    sources: dict[Engine, str] = Field(min_length=1)
    lacks: dict[Engine, str] = Field(default_factory=dict, description="engine: why it has no such series")

    @model_validator(mode="after")
    def _every_engine(self) -> EngineSignal:
        missing = sorted(set(conventions.ENGINES) - set(self.sources) - set(self.lacks))
        both = sorted(set(self.sources) & set(self.lacks))
        if missing or both:
            raise ValueError(f"{self.record}: give every engine once, in `sources` or in `lacks` (missing {missing},"
                             f" in both {both})")
        return self
