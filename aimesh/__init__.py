"""AI-Mesh: LLM agents over Kafka topics that write, test, review and archive Python code."""

__version__ = "0.1.0"
