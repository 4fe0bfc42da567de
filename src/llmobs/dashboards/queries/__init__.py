"""Named PromQL queries, one module per area (as kubernetes-mixin's dashboards/resources/queries/): the
panel functions of every dashboard read them.

A query function takes the scope it selects in (a `llmobs.promql.Promql` of the dashboard's variables,
e.g. `Context.engines`) and whatever else it needs (a job name, a quantile label, the host label), and
returns the expression; aggregations, rates and arithmetic are written here, never in a panel. A panel
that plots one series as it is selects it itself (`ctx.gpus.sel(gpu.TEMP_MARGIN)`).

The recording rules the dashboards read (src/llmobs/catalog/recording_rules.yaml) are named once, in these
modules; the latency, SLO and info series come from `llmobs.conventions`. When the dashboards are
generated, the linter checks every series a query reads against the catalog.
"""

# Grafana's rate window: at least four scrapes, and it follows the zoom (fixed windows belong in rules).
RATE = "$__rate_interval"
