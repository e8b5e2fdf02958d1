"""Every topic of the mesh in one place: its name, its record type, its partition count.

All topics share one partition count and JSON keys (the root task id), so a cycle's messages
are co-partitioned and the tables that join them stay correct with many workers. The worker
creates them before it subscribes (`internal=True`: the app owns them), so a fresh Kafka cluster
gets every topic with the mesh's partition count and replication factor, not whatever a broker's
auto-creation would pick, and no consumer subscribes to a topic that does not exist yet.
"""

from __future__ import annotations

from aimesh.app import app, settings
from aimesh.cycle.records import DeadLetter, Review, Solution, Task, Telemetry, Verdict
from aimesh.stream.deadletter import DEAD_LETTER_TOPIC

TASKS = "ai_topic"
SOLUTIONS = "ai_solutions"
VERIFIED = "ai_verified_solutions"
FAILED = "ai_failed_solutions"
REVIEWS = "ai_reviews"
TELEMETRY = "ai_telemetry"
DEAD_LETTERS = DEAD_LETTER_TOPIC  # named where the app's Topic class sends to it

_partitions = settings.partitions

tasks_topic = app.topic(TASKS, value_type=Task, partitions=_partitions, internal=True)
solutions_topic = app.topic(SOLUTIONS, value_type=Solution, partitions=_partitions, internal=True)
verified_topic = app.topic(VERIFIED, value_type=Verdict, partitions=_partitions, internal=True)
failed_topic = app.topic(FAILED, value_type=Verdict, partitions=_partitions, internal=True)
reviews_topic = app.topic(REVIEWS, value_type=Review, partitions=_partitions, internal=True)
telemetry_topic = app.topic(TELEMETRY, value_type=Telemetry, partitions=_partitions, internal=True)
dead_letters_topic = app.topic(
    DEAD_LETTERS, value_type=DeadLetter, partitions=_partitions, internal=True
)
