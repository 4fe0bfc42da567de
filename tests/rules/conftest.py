"""Fixtures of the rules tests: the real promtool and amtool, and the lab's settings."""

from __future__ import annotations

import pytest
from rules_support import LAB_SETTINGS, tool

from llmobs.settings import Settings, load_settings_file


@pytest.fixture(scope="session")
def promtool() -> str:
    return tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return tool("amtool")


@pytest.fixture(scope="session")
def lab_settings() -> Settings:
    return load_settings_file(LAB_SETTINGS)
