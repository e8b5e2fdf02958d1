"""The embedded defaults `aimesh up` starts when nothing external is configured: broker, LLM."""
