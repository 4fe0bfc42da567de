"""The endpoint prober's series (llmobs.prober, names from `llmobs.conventions`): what a client of each endpoint
saw, per endpoint and model, on the SLO dashboard's model variable."""

from __future__ import annotations

from llmobs import conventions
from llmobs.promql import Promql, by, none_of, variable

SCOPE = Promql((variable("model_name"),))
ENDPOINT = ("endpoint", "model_name")
WINDOW = "$__rate_interval"


def success() -> str:
    """1 when every prober's last probe of the endpoint succeeded (the alert fails on the best of them)."""
    return f"max by ({by(*ENDPOINT)}) ({SCOPE.sel(conventions.PROBE_SUCCESS)})"


def http_status() -> str:
    return f"max by ({by(*ENDPOINT)}) ({SCOPE.sel(conventions.PROBE_HTTP_STATUS)})"


def mean_ttft() -> str:
    """The clients' mean time to first token (EndpointProbeTtftOverSlo computes it over 5 minutes)."""
    histogram = conventions.PROBE_TTFT
    return SCOPE.ratio(SCOPE.sum_rate(f"{histogram}_sum", WINDOW, ENDPOINT),
                       SCOPE.sum_rate(f"{histogram}_count", WINDOW, ENDPOINT))


def ttft_target() -> str:
    return SCOPE.sel(conventions.PROBE_TTFT_TARGET)


def inter_chunk_quantile(q: float) -> str:
    buckets = SCOPE.sum_rate(f"{conventions.PROBE_INTER_CHUNK}_bucket", WINDOW, (*ENDPOINT, "le"))
    return SCOPE.quantile(q, buckets)


def tokens() -> str:
    return f"max by ({by(*ENDPOINT)}) ({SCOPE.sel(conventions.PROBE_TOKENS)})"


def failures() -> str:
    """Failed probes per endpoint and result (the prober starts every result at 0, so "none" is a zero bar)."""
    failed = SCOPE.increase(conventions.PROBES, WINDOW, none_of("result", ("ok",)))
    return f"sum by ({by(*ENDPOINT, 'result')}) ({failed})"
