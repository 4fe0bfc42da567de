"""SLOs and error budgets: the Sloth-style `slo:*` series the SLO rules record per model and SLO (named by
`llmobs.conventions`)."""

from __future__ import annotations

from llmobs import conventions
from llmobs.promql import Promql, variable

# The SLO dashboard's variables.
SCOPE = Promql((variable("model_name"), variable("slo")))


def objective() -> str:
    return SCOPE.sel(conventions.SLO_OBJECTIVE)


def sli(period: str) -> str:
    """The share of good events over the SLO period."""
    return f"1 - {SCOPE.sel(conventions.sli_error_ratio(period))}"


def sli_error_ratio(window: str) -> str:
    return SCOPE.sel(conventions.sli_error_ratio(window))


def budget_remaining() -> str:
    return SCOPE.sel(conventions.SLO_PERIOD_BUDGET_REMAINING)


def current_burn_rate() -> str:
    return SCOPE.sel(conventions.SLO_CURRENT_BURN_RATE)


def error_budget() -> str:
    """1 - objective: the error ratio the SLO allows."""
    return SCOPE.sel(conventions.SLO_ERROR_BUDGET)


def burn_rate(window: str) -> str:
    """How fast the SLO spends its budget over `window`: error ratio / error budget."""
    return f"{sli_error_ratio(window)} / on (slo, model_name) {error_budget()}"
