"""Node ranking at scale: the selector's per-node shortcuts (checks kept per node and job shape, arithmetic on plain
numbers) rank exactly as the straightforward ranking does, and notice a node whose info changed."""

from __future__ import annotations

import random
from collections.abc import Iterable

from bacalhau.models.execution import Execution
from bacalhau.models.job import Job
from bacalhau.models.node import NodeInfo, NodeState
from bacalhau.models.resources import Resources
from bacalhau.models.spec import LabelSelectorRequirement
from bacalhau.models.state import ExecutionStateType
from bacalhau.orchestrator.selection import (
    FRESH_NODE_BONUS,
    POSSIBLE,
    PREFERRED,
    UNSUITABLE,
    CapacityTracker,
    NodeRank,
    NodeSelector,
    _feature,
    _labels,
    _previous_executions,
    _too_big,
    job_resources,
)
from tests.unit.test_scheduler import GIB, execution, job, node


def reference_rank(
    job: Job, nodes: Iterable[NodeState], executions: list[Execution], tracker: CapacityTracker, factor: float = 1.5
) -> tuple[list[NodeRank], list[NodeRank]]:
    """The ranking as written before it was made cheap per node (randomness 0): every check on every node, with
    Resources' own arithmetic."""
    required = job_resources(job)
    previous = _previous_executions(executions)
    matched: list[NodeRank] = []
    rejected: list[NodeRank] = []
    for n in nodes:
        if not n.is_schedulable:
            continue
        compute = n.info.compute_node_info
        assert compute is not None
        task = job.task
        reasons = [
            _feature(task.engine_spec.type, compute.execution_engines),
            _feature(task.publisher_spec.type, compute.publishers) if task.publisher_spec.type else "",
            *(_feature(s.source.type, compute.storage_sources) for s in task.input_sources if s.source),
        ]
        reason = next((r for r in reasons if r), "")
        if reason:
            rejected.append(NodeRank(n, UNSUITABLE, reason))
            continue
        total = 30 if task.input_sources else 20
        labels_rank, reason = _labels(job, n.info.labels)
        if labels_rank == UNSUITABLE:
            rejected.append(NodeRank(n, UNSUITABLE, reason))
            continue
        total += labels_rank
        if not required.is_zero():
            if not required.fits_in(compute.max_job_requirements):
                rejected.append(NodeRank(n, UNSUITABLE, _too_big(required, compute.max_job_requirements)))
                continue
            total += PREFERRED
        count, excluded = previous.get(n.info.node_id, (0, False))
        if count > 1:
            rejected.append(NodeRank(n, UNSUITABLE, "job already executed on this node more than once"))
            continue
        if excluded:
            rejected.append(NodeRank(n, UNSUITABLE, "job rejected"))
            continue
        total += POSSIBLE if count else FRESH_NODE_BONUS
        used = tracker.used(n.info.node_id)
        if compute.max_capacity.is_zero():
            rejected.append(NodeRank(n, UNSUITABLE, "node queue usage is unknown", busy=True))
            continue
        if not used.add(required).fits_in(compute.max_capacity.scale(factor)):
            available = compute.max_capacity.sub(used).describe()
            rejected.append(NodeRank(n, UNSUITABLE, f"node busy with available capacity {available}", busy=True))
            continue
        matched.append(NodeRank(n, total, "suitable"))
    free = {r.node_id: r.node.info.compute_node_info.max_capacity.sub(tracker.used(r.node_id)) for r in matched}  # type: ignore[union-attr]
    best = Resources(
        cpu=max((f.cpu for f in free.values()), default=0.0),
        memory=max((f.memory for f in free.values()), default=0),
        disk=max((f.disk for f in free.values()), default=0),
        gpu=max((f.gpu for f in free.values()), default=0),
    )
    for r in matched:
        mine = free[r.node_id]
        share = sum(
            weight * (have / top if top else 0.0)
            for weight, have, top in (
                (0.4, mine.cpu, best.cpu),
                (0.3, mine.memory, best.memory),
                (0.2, mine.disk, best.disk),
                (0.1, mine.gpu, best.gpu),
            )
        )
        r.rank += int(share * 100)
    matched.sort(key=lambda r: r.rank, reverse=True)
    return matched, rejected


def summary(ranks: list[NodeRank]) -> list[tuple[str, int, str, bool]]:
    return [(r.node_id, r.rank, r.reason, r.busy) for r in ranks]


def running(node_id: str, index: int, cpu: float, memory: int) -> Execution:
    """A live execution of another job holding ``cpu`` and ``memory`` of the node."""
    held = execution(node_id, ExecutionStateType.RUNNING, created=index)
    held.id = f"held-{node_id}-{index}"
    held.job_id = f"other-{index}"
    held.allocated_resources.tasks["main"] = Resources(cpu=cpu, memory=memory)
    return held


def test_ranking_many_varied_nodes_matches_the_straightforward_ranking() -> None:
    chance = random.Random(7)
    nodes = []
    for i in range(300):
        engines = chance.choice((("wasm", "noop"), ("noop",), ("docker", "wasm")))
        labels = chance.choice(({}, {"zone": "eu"}, {"zone": "us", "gpu": "no"}))
        n = node(f"n-{i:03d}", cpu=chance.choice((0.0, 0.25, 1.0, 1.6, 8.0)), engines=engines, **labels)
        n.connection = chance.choice(("CONNECTED",) * 9 + ("DISCONNECTED",))
        nodes.append(n)
    tracker = CapacityTracker()
    tracker.load(
        {f"n-{i:03d}": [running(f"n-{i:03d}", i, chance.choice((0.5, 1.0, 2.5)), GIB)] for i in range(0, 300, 7)}
    )
    jobs = [
        job(),
        job(Resources={"CPU": "2", "Memory": "1gb"}),
        job(Engine={"Type": "noop"}, Resources={"CPU": "10m", "Memory": "10mb"}),
        job(Engine={"Type": "docker"}, Publisher={"Type": "s3"}),
        job(InputSources=[{"Target": "/in", "Source": {"Type": "inline", "Params": {"URL": "data:,x"}}}]),
    ]
    constrained = job()
    constrained.constraints = [LabelSelectorRequirement(key="zone", operator="=", values=["eu"])]
    favoured = job()
    favoured.constraints = [LabelSelectorRequirement(key="favour_zone", operator="=", values=["us"])]
    jobs += [constrained, favoured]
    history = [
        execution("n-001", ExecutionStateType.FAILED),
        execution("n-002", ExecutionStateType.COMPLETED),
        execution("n-003", ExecutionStateType.FAILED, created=1),
        execution("n-003", ExecutionStateType.FAILED, created=2),
    ]
    selector = NodeSelector(tracker, randomness=0)
    for _ in range(2):  # the second time from what the selector kept of each node
        for spec in jobs:
            for executions in ([], history):
                matched, rejected = selector.rank(spec, nodes, executions)
                want_matched, want_rejected = reference_rank(spec, nodes, executions, tracker)
                assert summary(matched) == summary(want_matched)
                assert summary(rejected) == summary(want_rejected)
                small = nodes[:40]  # fewer suitable nodes than a sample: the best few are the head of the whole
                whole, small_rejected = selector.rank(spec, small, executions)
                for limit in (0, 1, 3, len(whole), len(whole) + 5):
                    best, also_rejected = selector.rank(spec, small, executions, limit=limit)
                    assert summary(best) == summary(whole[:limit])
                    assert summary(also_rejected) == summary(small_rejected)


def test_a_node_whose_info_changed_is_ranked_by_its_new_info() -> None:
    """What ranking keeps of a node is tied to its info: a handshake or info update (a new NodeInfo) is seen at
    once."""
    tracker = CapacityTracker()
    selector = NodeSelector(tracker, randomness=0)
    n = node("n-1", engines=("wasm",))
    spec = job(Engine={"Type": "noop"})
    assert selector.rank(spec, [n], [])[0] == []
    info = n.info.model_copy(deep=True)
    assert info.compute_node_info is not None
    info.compute_node_info.execution_engines = ["wasm", "noop"]
    info.compute_node_info.max_capacity = Resources(cpu=0.5, memory=GIB)
    n.info = info
    [ranked], _ = selector.rank(spec, [n], [])
    assert ranked.node_id == "n-1"
    n.info = NodeInfo.model_validate(n.info.to_wire() | {"Labels": {"zone": "eu"}})
    spec.constraints = [LabelSelectorRequirement(key="zone", operator="=", values=["us"])]
    _, [refused] = selector.rank(spec, [n], [])
    assert "don't match required selectors" in refused.reason


def test_the_tracker_keeps_its_totals_as_numbers_too() -> None:
    tracker = CapacityTracker()
    first, second = running("n-1", 1, 0.5, GIB), running("n-1", 2, 0.25, 2 * GIB)
    tracker.reserve([first, second])
    used = tracker.used("n-1")
    assert tracker.used_numbers("n-1") == (used.cpu, used.memory, used.disk, used.gpu) == (0.75, 3 * GIB, 0, 0)
    tracker.cancel_reservation([first, second])
    assert tracker.used_numbers("n-1") == (0.0, 0, 0, 0)


def test_placing_a_few_on_a_large_network_ranks_a_sample_and_still_finds_rare_nodes() -> None:
    """With more suitable nodes than ``SAMPLE_SUITABLE``, placing k looks at a sample of them; nodes that suit the
    job are found however few and wherever they are, and when too few suit it, every node's reason is given."""
    nodes = [node(f"n-{i:04d}", engines=("docker",)) for i in range(1000)]
    rare = [node(f"r-{i}", engines=("wasm",)) for i in range(3)]
    selector = NodeSelector(CapacityTracker())
    for where in (0, 500, 1000):
        network = nodes[:where] + rare + nodes[where:]
        best, rejected = selector.rank(job(), network, [], limit=3)
        assert sorted(r.node_id for r in best) == ["r-0", "r-1", "r-2"]
        best, rejected = selector.rank(job(), network, [], limit=5)  # two short: the reasons of all the others
        assert len(best) == 3 and len(rejected) == 1000

    everywhere = [node(f"w-{i:04d}") for i in range(1000)]
    best, rejected = selector.rank(job(), everywhere, [], limit=2)
    assert len(best) == 2 and rejected == [] and all(r.suitable for r in best)
    seen = {selector.rank(job(), everywhere, [], limit=1)[0][0].node_id for _ in range(20)}
    assert len(seen) > 1  # samples start from a random node: placements spread over the network
