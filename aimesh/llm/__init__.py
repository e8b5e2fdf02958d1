"""LLM access: the Ollama client wrapper and the embedded Ollama-compatible server."""
