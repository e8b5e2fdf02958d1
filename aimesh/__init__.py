"""AI-Mesh: LLM agents over Kafka topics that write, test, review and archive Python code.

Where things live (tests/test_layers.py holds the rules between them):
- composition, the only place that wires things: `app` (the Faust app), `topics`, `services`
  (the engines built once from the settings), `settings`, `cli`;
- `cycle/`: one cycle as plain code (records, steps, prompts, code extraction, task sources, and
  `pipeline`, the whole cycle in one loop);
- `agents/`: the Faust agents, thin glue between topics and `cycle.steps`;
- `stream/`: the stream plumbing under the agents (commit barrier, durable tables, dead letters,
  telemetry, broker profile, diagnostics, recovery watch, transport fixes);
- engines, which know nothing of Faust: `llm/`, `memory/`, `sandbox/`, `archive/`;
- `web/`: the JSON views and the dashboard; `embedded/`: the broker and LLM server `aimesh up`
  starts when nothing external is configured.
"""

__version__ = "0.1.0"
