"""Exactly-once transactions may stay open as long as one event may take to handle.

A partition's transaction stays open until every record before its last handled one is finished,
so with two actors on one partition it can outlive a whole model call. aiokafka's default of 60 s
is shorter than one call may take (`AIMESH_LLM_TIMEOUT`, 300 s): the broker aborted the
transaction, fenced the producer and the worker crashed. The timeout follows Faust's
`broker_max_poll_interval`, which the app sets from the model timeout, capped at Kafka's default
`transaction.max.timeout.ms` (15 min) so a default broker accepts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typing_extensions import override

from aimesh.stream.transport.mixin_base import ProducerMixinBase

BROKER_DEFAULT_MAX_S = 900.0


class TransactionTimeout(ProducerMixinBase):
    """Mixin for Faust's aiokafka Producer."""

    @override
    def _settings_default(self) -> Mapping[str, Any]:
        longest_event_s = float(self.app.conf.broker_max_poll_interval)
        timeout_ms = int(min(longest_event_s, BROKER_DEFAULT_MAX_S) * 1000)
        return {**super()._settings_default(), "transaction_timeout_ms": timeout_ms}
