"""The endpoint prober: an outside-in exporter that sends each declared OpenAI-compatible endpoint a small
streamed chat completion at a configured interval and exports what a client saw (llmobs.conventions PROBE_*).

It runs its own loop rather than blackbox_exporter's multi-target `/probe?target=` pattern: the probe costs
tokens on a GPU, so its rate must be the configured interval, not the number of Prometheus servers (an HA pair
scrapes twice) or their scrape intervals; a histogram of every probe's TTFT also needs one process that saw
them all. `llmobs prober serve` runs it (probe.py: one probe; exporter.py: the loop and the metrics).
"""
