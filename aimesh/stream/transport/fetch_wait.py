"""On Tansu a fetch with nothing to read waits out its whole `fetch_max_wait`, where Kafka ends
the wait as soon as a record arrives. Faust fixes that wait at 1.5 s, so on the embedded broker
every hop of a cycle that found its consumer idle waited up to 1.5 s: one cycle alone took
1515 ms end to end (`bench/mesh_throughput.py`, instant LLM), 113 ms with a 100 ms wait. The app
says how long a fetch may wait (`MeshApp.fetch_max_wait_ms`, from the broker profile); None
keeps Faust's wait, as on Kafka, where an arriving record ends it anyway."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from aimesh.stream.transport.mixin_base import ConsumerThreadMixinBase


class FetchWait(ConsumerThreadMixinBase):
    @override
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", None)
        if wait is not None:
            consumer._fetch_max_wait_ms = int(wait)  # read when the consumer starts its fetcher
        return consumer
