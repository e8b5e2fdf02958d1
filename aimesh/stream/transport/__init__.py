"""Faust's Kafka transport, with the fixes the fault tests (tests/test_faults.py) called for, each
in its own module:

- `topics_known`: subscribe only once every broker's metadata shows every topic;
- `stable_highwaters`: under exactly-once, recover tables up to the broker's last stable offsets;
- `parked_seek`: seek to the committed offsets while no record is being handed out;
- `handled_commits`: never commit past a record the agents have not finished;
- `uncommitted_rewind`: read a partition nobody has committed for from its start;
- `position_pending`: the livelock check passes over a partition whose position is being looked up;
- `barrier_commits`: a commit waits for the agents' open output sections;
- `transaction_timeout`: exactly-once transactions may stay open as long as an event may take;
- `tracked_topics`: the producer's metadata keeps every topic the producer sends to;
- `fetch_wait`: on Tansu, a fetch waits 100 ms for records, not Faust's 1.5 s.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as driver
from typing_extensions import override

from aimesh.stream.transport.barrier_commits import BarrierCommits
from aimesh.stream.transport.fetch_wait import FetchWait
from aimesh.stream.transport.handled_commits import HandledCommits
from aimesh.stream.transport.parked_seek import ParkedSeek
from aimesh.stream.transport.position_pending import PositionPending
from aimesh.stream.transport.stable_highwaters import StableHighwaters
from aimesh.stream.transport.topics_known import TopicsKnown
from aimesh.stream.transport.tracked_topics import TrackedTopics
from aimesh.stream.transport.transaction_timeout import TransactionTimeout
from aimesh.stream.transport.uncommitted_rewind import RewindUncommitted


class ConsumerThread(
    FetchWait, PositionPending, StableHighwaters, TopicsKnown, driver.AIOKafkaConsumerThread
):
    pass


class Consumer(HandledCommits, ParkedSeek, RewindUncommitted, BarrierCommits, driver.Consumer):
    @override
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Producer(TrackedTopics, TransactionTimeout, driver.Producer):
    pass


class Transport(driver.Transport):
    Consumer: Any = Consumer
    Producer: Any = Producer
