"""Where the live dashboard test finds the lab's Prometheus."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def lab_prometheus_url() -> str:
    url = os.environ.get("LLMOBS_LAB_PROMETHEUS_URL")
    if not url:
        pytest.skip("no lab Prometheus: set LLMOBS_LAB_PROMETHEUS_URL to a running lab's Prometheus")
    return url
