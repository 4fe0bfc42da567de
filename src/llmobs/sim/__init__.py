"""Simulators that stand in for GPU servers: dcgm-exporter, vLLM engines, fault injection, an alert sink.

A simulated host (`host.HostSim`) runs its GPUs (`dcgm.GpuSim`) and its vLLM engines (`vllm.Engine`)
in one process, so the engines' load drives the GPUs' utilisation, power and framebuffer the way it
does on a real server. It serves what the real programs serve, on their ports: dcgm-exporter's
/metrics on :9400 and each engine's /metrics and OpenAI API on its own port. Faults are injected at
runtime through a separate control port (`faults`), which keeps answering when an exporter or an
engine is made to go down. Everything is derived from the metrics catalog (names, types, labels,
histogram buckets, GPU models); only the dynamics live here.
"""
