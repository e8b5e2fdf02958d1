"""`kill -USR1 <worker pid>` logs where every asyncio task of the worker is waiting, and where
its consumer stands on each partition.

A stream worker that stops making progress shows no error; the stacks of its tasks say what it
waits for (a broker, the model, a lock), and the consumer's positions say whether a partition with
unread records is being fetched at all, which is what one needs to tell a stall from a slow step.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import signal
from collections.abc import Callable
from typing import Any

from aimesh.app import app
from aimesh.stream.commit_barrier import commit_barrier
from aimesh.stream.transport.position_pending import partition_state, position_of

log = logging.getLogger(__name__)


def _frame_and_next(awaitable: Any) -> tuple[Any, Any]:
    """The frame of a coroutine, generator or async generator, and what it awaits in turn. The
    step an `async for` or `async with` awaits (`async_generator_asend`) has no frame of its own:
    its generator is found among the objects it refers to."""
    for frame_name, next_name in (("cr_frame", "cr_await"), ("ag_frame", "ag_await"),
                                  ("gi_frame", "gi_yieldfrom")):  # fmt: skip
        if hasattr(awaitable, frame_name):
            return getattr(awaitable, frame_name), getattr(awaitable, next_name)
    if type(awaitable).__name__ == "async_generator_asend":
        generators = [ref for ref in gc.get_referents(awaitable) if hasattr(ref, "ag_frame")]
        return None, generators[0] if generators else None
    return None, None


def _awaiting(coroutine: Any) -> list[str]:
    """The chain of awaits a suspended coroutine sits in, outermost first (asyncio's own task
    stacks show only the outermost frame)."""
    chain = []
    while coroutine is not None:
        frame, coroutine = _frame_and_next(coroutine)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
    return chain


def dump_actors() -> str:
    """Where each agent's actors wait: a task's own chain ends at the actor it awaits."""
    out = io.StringIO()
    for agent in app.agents.values():
        for number, actor in enumerate(agent._actors):
            out.write(f"--- actor {number} of {agent.name}\n")
            for line in _awaiting(actor.it):
                out.write(f"    {line}\n")
    return out.getvalue()


def dump_tasks() -> str:
    """Every pending task in this loop and the chain of awaits it waits in."""
    out = io.StringIO()
    tasks = [task for task in asyncio.all_tasks() if not task.done()]
    out.write(f"{len(tasks)} pending asyncio tasks\n")
    for task in tasks:
        out.write(f"--- {task.get_name()}\n")
        for line in _awaiting(task.get_coro()):
            out.write(f"    {line}\n")
    return out.getvalue()


def consumer_state() -> str:
    """Per assigned partition: the fetch position, Faust's read and committed offsets, the
    highwater, whether Faust and aiokafka treat it as active, and the lowest offsets handed to the
    agents and not finished, which hold commits back (read without locks: a snapshot for a
    human, taken while the consumer thread may move on)."""
    consumer = app.consumer
    kafka = getattr(consumer._thread, "_consumer", None)
    out = io.StringIO()
    out.write(
        f"consumer: flow_active={consumer.flow_active} rebalancing={app.rebalancing} "
        f"generation={app.consumer_generation_id} unacked={len(consumer._unacked_messages)} "
        f"recovery_completed={app.tables.recovery.completed.is_set()}\n"
    )
    if kafka is None:
        return out.getvalue() + "    no Kafka consumer yet\n"
    buffered = kafka._fetcher._records
    active = consumer._active_partitions or set()
    handed_out = getattr(consumer, "handed_out", {})
    for tp in sorted(consumer.assignment()):
        state, position = partition_state(kafka, tp), position_of(kafka, tp)
        out.write(
            f"    {tp.topic}[{tp.partition}] position={position} "
            f"read={consumer._read_offset.get(tp)} committed={consumer._committed_offset.get(tp)} "
            f"highwater={kafka.highwater(tp)} active={tp in active} "
            f"paused={tp in consumer._paused_partitions} "
            f"kafka_paused={getattr(state, 'paused', None)} buffered={tp in buffered} "
            f"acked={len(consumer._acked.get(tp, ()))} "
            f"handed_out={sorted(handed_out.get(tp, ()))[:5]}\n"
        )
    return out.getvalue()


def recovery_state() -> str:
    """Where Faust's table recovery stands: a worker whose stream partitions stay paused after a
    rebalance is most often still waiting for a changelog to reach the offset recovery expects."""
    recovery = app.tables.recovery
    remaining = {f"{tp.topic}[{tp.partition}]": left
                 for tp, left in recovery.active_remaining().items() if left}  # fmt: skip
    return (
        f"recovery: in_recovery={recovery.in_recovery} generation={recovery._generation_id} "
        f"start_signal={recovery.signal_recovery_start.is_set()} "
        f"end_signal={recovery.signal_recovery_end.is_set()} active_remaining={remaining}\n"
    )


def producer_state() -> str:
    """The producer's requests in flight (one per broker at most: a request that never returns
    holds back every partition that broker leads) and the batches waiting, per partition with
    its leader."""
    kafka = getattr(app.producer, "_producer", None)
    if kafka is None:
        return "producer: not started\n"
    sender, batches = kafka._sender, kafka._message_accumulator._batches
    out = io.StringIO()
    out.write(
        f"producer: in flight to brokers {sorted(sender._in_flight)}, "
        f"muted partitions {sorted(map(str, sender._muted_partitions))}\n"
    )
    for tp, waiting in sorted(batches.items(), key=lambda item: str(item[0])):
        if waiting:
            leader = kafka.client.cluster.leader_for_partition(tp)
            out.write(f"    {tp.topic}[{tp.partition}] batches={len(waiting)} leader={leader}\n")
    return out.getvalue()


def _taken(part: Callable[[], str], name: str) -> str:
    """One part of the dump, or why it could not be taken: a diagnostic must not take the worker
    down."""
    try:
        return part()
    except Exception as exc:
        return f"{name} unavailable: {exc!r}\n"


def dump() -> str:
    """The task dump, then the consumer's, recovery's and producer's states."""
    states = [_taken(consumer_state, "consumer state"), _taken(recovery_state, "recovery state"),
              _taken(producer_state, "producer state")]  # fmt: skip
    return dump_tasks() + dump_actors() + commit_barrier.describe() + "\n" + "".join(states)


@app.task
async def listen_for_dump_requests() -> None:
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGUSR1, lambda: log.warning("task dump\n%s", dump())
    )
