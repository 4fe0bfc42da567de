"""Fixtures of the rules tests: the real promtool and amtool of the pinned versions, and the lab's settings.

`promtool` runs each test once per promtool the kit supports: the pinned Prometheus image's (3.5) and
Prometheus 2.x's (the test id says which, e.g. `[promtool-2.53.3]`)."""

from __future__ import annotations

import pytest
from rules_support import LAB_SETTINGS, tool, tool_versions

from llmobs.settings import Settings, load_settings_file


@pytest.fixture(scope="session", params=tool_versions("promtool"), ids=lambda version: f"promtool-{version}")
def promtool(request: pytest.FixtureRequest) -> str:
    return tool("promtool", request.param)


@pytest.fixture(scope="session")
def amtool() -> str:
    return tool("amtool")


@pytest.fixture(scope="session")
def lab_settings() -> Settings:
    return load_settings_file(LAB_SETTINGS)
