"""The embedded defaults `aimesh up` starts when nothing external is configured: the broker
(`broker`, Tansu) and the LLM server (`llm`), with `processes`, the helpers every launcher of a
process uses (a free port, waiting until it answers, stopping it with what it started)."""
