"""What tests and benches share to drive a real mesh: the scripted LLM (a fake of a network peer,
so it lives here and never in `aimesh/`), worker processes, Kafka I/O as an outside client,
tasks whose title markers script how each cycle goes, and HumanEval's canonical and altered
solutions, the controls that show a judge both passes and fails. Nothing imports `tests/`: what
both need is here, and `aimesh/` imports neither (tests/test_layers.py)."""
