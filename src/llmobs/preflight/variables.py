"""The gpu_preflight role's variables, validated on the controller (pydantic, the catalog) before the host is
touched: `plan()` is everything the stdlib-only judge (llmobs.preflight.checks) needs, on the controller and in
the host's timer alike."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from llmobs import catalog
from llmobs.errors import ConfigError, ConfigErrors, from_validation_error
from llmobs.preflight import parsers
from llmobs.preflight.checks import Action, CheckName
from llmobs.types import Strict


class RoleVariables(Strict):
    """The role's variables, under their own names so that errors name them."""

    gpu_preflight_min_driver_version: Annotated[str, Field(pattern=r"^\d+(\.\d+)*$")]
    gpu_preflight_expected_gpu_count: Annotated[int, Field(ge=0, le=64)]
    gpu_preflight_expected_model: str
    gpu_preflight_max_retired_pages: Annotated[int, Field(ge=0)]
    gpu_preflight_nvswitch: Literal["auto", "present", "absent"]
    gpu_preflight_on_failure: Literal["fail", "warn"]
    gpu_preflight_check_actions: dict[CheckName, Action] = Field(default_factory=dict)


def validate_variables(values: dict[str, Any]) -> RoleVariables:
    """The role's variables, validated; raises ConfigError naming each bad variable and its fix."""
    try:
        variables = RoleVariables.model_validate(values)
    except ValidationError as error:
        raise from_validation_error(error, source="gpu_preflight") from None
    models = catalog.load().gpu_models
    model = variables.gpu_preflight_expected_model
    if model and model not in models:
        raise ConfigErrors([ConfigError(
            "gpu_preflight_expected_model", f"{model!r} is not a GPU model of the catalog",
            f"use one of {sorted(models)} (src/llmobs/catalog/gpus.yaml), or '' to skip the model check",
            "gpu_preflight",
        )])
    return variables


def plan(values: dict[str, Any]) -> dict[str, Any]:
    """Validated variables plus what the probe must run and what the judge needs of the catalog (JSON, so
    that the host's timer takes the same plan); the role calls this before touching the host."""
    variables = validate_variables(values)
    models = {key: {"model_name": m.model_name, "datacenter": m.datacenter, "nvlink": m.nvlink}
              for key, m in catalog.load().gpu_models.items()}
    return {
        "settings": variables.model_dump(),
        "gpu_models": models,
        "query_fields": list(parsers.QUERY_FIELDS),
        "query_format": parsers.QUERY_FORMAT,
    }
