"""llm-observability-stack: observability for bare-metal GPU servers running LLM inference."""

__version__ = "0.1.0"
