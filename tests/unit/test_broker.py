"""The evaluation broker: priority order, one evaluation in flight per job, delays, blocking, retries."""

from __future__ import annotations

import asyncio

import pytest

from bacalhau.models.evaluation import EvalStatus, Evaluation
from bacalhau.models.timefmt import now_ns
from bacalhau.orchestrator.broker import Delivery, EvaluationBroker


def evaluation(
    job_id: str, priority: int = 0, *, created: int = 0, status: str = "pending", wait_until: int = 0
) -> Evaluation:
    return Evaluation(
        id=f"{job_id}-{created}-{status}",
        job_id=job_id,
        priority=priority,
        create_time=created,
        status=status,
        wait_until=wait_until,
        type="batch",
    )


async def take(broker: EvaluationBroker) -> Delivery:
    """One delivery, as a scheduling round of one takes it."""
    [delivery] = await broker.dequeue_batch(1)
    return delivery


async def dequeue(broker: EvaluationBroker, timeout: float = 1.0) -> Evaluation:
    return (await asyncio.wait_for(take(broker), timeout)).evaluation


async def test_highest_priority_first_then_oldest() -> None:
    broker = EvaluationBroker()
    broker.enqueue_all([evaluation("a", 1, created=2), evaluation("b", 5, created=3), evaluation("c", 1, created=1)])
    assert [(await dequeue(broker)).job_id for _ in range(3)] == ["b", "c", "a"]


async def test_one_evaluation_per_job_in_flight_and_later_ones_are_folded_in() -> None:
    broker = EvaluationBroker()
    first, second, third = (evaluation("job", created=i) for i in range(3))
    broker.enqueue(first)
    delivery = await take(broker)
    broker.enqueue(second)
    broker.enqueue(third)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(take(broker), 0.05)
    broker.ack(delivery)
    again = await take(broker)
    assert again.evaluation is second
    assert again.superseded == [third]


async def test_a_delayed_evaluation_waits_until_its_time() -> None:
    broker = EvaluationBroker()
    broker.enqueue(evaluation("later", wait_until=now_ns() + 150_000_000))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(take(broker), 0.05)
    assert (await dequeue(broker, timeout=2)).job_id == "later"


async def test_blocked_evaluations_wait_for_capacity_best_first() -> None:
    broker = EvaluationBroker()
    broker.enqueue(evaluation("low", 1, status=EvalStatus.BLOCKED.value))
    broker.enqueue(evaluation("high", 9, status=EvalStatus.BLOCKED.value))
    assert broker.blocked_count == 2
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(take(broker), 0.05)
    assert broker.unblock(1) == 1
    assert (await dequeue(broker)).job_id == "high"
    broker.unblock()
    assert (await dequeue(broker)).job_id == "low"


async def test_a_blocked_evaluation_is_released_at_its_deadline() -> None:
    broker = EvaluationBroker()
    broker.enqueue(evaluation("queued", status=EvalStatus.BLOCKED.value, wait_until=now_ns() + 100_000_000))
    assert (await dequeue(broker, timeout=2)).job_id == "queued"


async def test_ack_blocked_parks_the_evaluation_until_unblocked() -> None:
    broker = EvaluationBroker()
    broker.enqueue(evaluation("job"))
    delivery = await take(broker)
    broker.ack(delivery, blocked=True)
    assert broker.blocked_count == 1
    broker.unblock()
    assert (await dequeue(broker)).job_id == "job"


async def test_nack_retries_with_a_delay_and_gives_up_after_the_limit() -> None:
    broker = EvaluationBroker(max_attempts=3, retry_delay=0.01)
    broker.enqueue(evaluation("flaky"))
    attempts = []
    for _ in range(3):
        delivery = await asyncio.wait_for(take(broker), 2)
        attempts.append(delivery.attempt)
        broker.nack(delivery)
    assert attempts == [1, 2, 3]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(take(broker), 0.2)


async def test_evaluations_moving_placed_work_along_go_before_new_placements() -> None:
    broker = EvaluationBroker()
    register = evaluation("new-job", created=1).model_copy(update={"triggered_by": "job-register"})
    update = evaluation("running-job", created=2).model_copy(update={"triggered_by": "exec-update"})
    urgent = evaluation("urgent-job", 5, created=3).model_copy(update={"triggered_by": "job-register"})
    broker.enqueue_all([register, update, urgent])
    assert [(await dequeue(broker)).job_id for _ in range(3)] == ["urgent-job", "running-job", "new-job"]


async def test_a_batch_takes_up_to_its_limit_one_evaluation_per_job() -> None:
    broker = EvaluationBroker()
    broker.enqueue_all([evaluation("a", created=1), evaluation("b", created=2)])
    broker.enqueue_all([evaluation(f"j{i}", created=10 + i) for i in range(5)])
    first = await asyncio.wait_for(broker.dequeue_batch(4), 1)
    assert [d.evaluation.job_id for d in first] == ["a", "b", "j0", "j1"]
    broker.enqueue(evaluation("a", created=3))  # a is in flight: this one waits for it
    rest = await asyncio.wait_for(broker.dequeue_batch(10), 1)
    assert [d.evaluation.job_id for d in rest] == ["j2", "j3", "j4"]
    broker.ack(first[0])
    [again] = await asyncio.wait_for(broker.dequeue_batch(10), 1)
    assert (again.evaluation.job_id, again.evaluation.create_time) == ("a", 3)


async def test_the_blocked_queue_is_read_in_order_past_any_number_of_replaced_entries() -> None:
    """Settling a job that still waits leaves its old heap entry behind: the queue is still read right after many."""
    broker = EvaluationBroker()
    blocked = [evaluation(f"job-{i}", created=i, status=EvalStatus.BLOCKED.value) for i in range(40)]
    broker.enqueue_all(blocked)
    requeued = []
    for original in blocked[:30]:  # each took some room and waits on: its entry goes behind the others
        again = original.model_copy(update={"modify_time": 1000 + original.create_time})
        requeued.append(again)
        broker.settle([again])
    assert [e.job_id for e in broker.blocked_in_order(5)] == [f"job-{i}" for i in range(30, 35)]
    assert list(broker.blocked_in_order(40)) == blocked[30:] + requeued
    broker.settle([e.model_copy(update={"status": EvalStatus.COMPLETE.value}) for e in blocked[30:]])
    assert list(broker.blocked_in_order(40)) == requeued  # placed in full: no longer held


async def test_the_blocked_queue_gives_each_evaluation_once_and_as_asked() -> None:
    """An evaluation blocked again keeps its earlier heap entry too: it is given once; and one released while the
    queue is being read is not given (the queue is read as the caller asks for the next)."""
    broker = EvaluationBroker()
    first, second, third = (evaluation(f"job-{i}", created=i, status=EvalStatus.BLOCKED.value) for i in range(3))
    broker.enqueue_all([first, second, third])
    broker.release(first)
    broker.enqueue(first)  # blocked again, the same evaluation: a second heap entry
    reading = broker.blocked_in_order(10)
    assert next(reading) is first
    broker.release(second)
    assert list(reading) == [third]


async def test_released_evaluations_leave_no_entries_at_the_front_of_the_blocked_queue() -> None:
    """Each reading of the queue would step over every released entry before the first still blocked (once per
    report from a compute node): those at the front are dropped when released."""
    broker = EvaluationBroker()
    blocked = [evaluation(f"job-{i}", created=i, status=EvalStatus.BLOCKED.value) for i in range(100)]
    broker.enqueue_all(blocked)
    for waiting in blocked[:60]:  # the first in order take freed room
        broker.release(waiting)
    await asyncio.wait_for(broker.dequeue_batch(30), 1)  # and a scheduling round takes some of them
    assert len(broker._blocked_order) == broker.blocked_count == 40
    assert next(broker.blocked_in_order(1)) is blocked[60]
