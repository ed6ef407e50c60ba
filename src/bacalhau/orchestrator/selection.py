"""Node selection: which approved, connected compute nodes can take a job, best first, and why the others can't.

Ranks follow the original's ranker chain: each ranker scores a node, -1 makes it unsuitable (with a reason), the
scores of suitable nodes add up. A node rejected only because it is busy right now is marked ``busy``, which lets
the scheduler queue the job instead of failing it.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from bacalhau.models.execution import Execution
from bacalhau.models.ids import short_id
from bacalhau.models.job import Job
from bacalhau.models.limits import UINT64_MAX
from bacalhau.models.node import ComputeNodeInfo, Connection, Membership, NodeInfo, NodeState, NodeType
from bacalhau.models.resources import MAX_CORES, Resources, format_bytes
from bacalhau.models.state import ExecutionStateType
from bacalhau.orchestrator.store import CommitEffects

UNSUITABLE = -1
POSSIBLE = 0
PREFERRED = 10
FAVOUR_PREFIX = "favour_"
# A node that has not failed this job outranks any node that has, whatever their free capacity: retries go
# elsewhere when they can.
FRESH_NODE_BONUS = 200
# Job shapes whose per-node checks a node's cache keeps before it starts again.
SHAPES_PER_NODE = 64
# Placing k executions (``rank(limit=k)``) looks at nodes from a random one on, until it has found this many suitable
# ones (or twice k, if more): the best of a sample that size is as good as the best of all in practice (Nomad
# schedules the same way), and on a network of a thousand nodes placement stops costing a pass over every node.
SAMPLE_SUITABLE = 64

# Resources as plain (CPU, memory, disk, GPU) numbers. Ranking does its arithmetic on these, with the same rounding
# and bounds as Resources' methods: building a pydantic model costs about 8 us, and ranking a thousand nodes built
# three or four per node, per job.
Numbers = tuple[float, int, int, int]
ZERO: Numbers = (0.0, 0, 0, 0)


def numbers(resources: Resources) -> Numbers:
    return (resources.cpu, resources.memory, resources.disk, resources.gpu)


def _add(a: Numbers, b: Numbers) -> Numbers:
    """``Resources.add``."""
    return (
        min(a[0] + b[0], MAX_CORES),
        min(a[1] + b[1], UINT64_MAX),
        min(a[2] + b[2], UINT64_MAX),
        min(a[3] + b[3], UINT64_MAX),
    )


def _sub(a: Numbers, b: Numbers) -> Numbers:
    """``Resources.sub``: the difference, floored at zero per dimension."""
    return (max(0.0, round(a[0] - b[0], 6)), max(0, a[1] - b[1]), max(0, a[2] - b[2]), max(0, a[3] - b[3]))


def _scale(a: Numbers, factor: float) -> Numbers:
    """``Resources.scale``."""
    return (
        min(a[0] * factor, MAX_CORES),
        min(int(a[1] * factor), UINT64_MAX),
        min(int(a[2] * factor), UINT64_MAX),
        min(int(a[3] * factor), UINT64_MAX),
    )


def _fits(a: Numbers, limit: Numbers) -> bool:
    """``Resources.fits_in``."""
    return a[0] <= limit[0] + 1e-9 and a[1] <= limit[1] and a[2] <= limit[2] and a[3] <= limit[3]


def _resources(a: Numbers) -> Resources:
    return Resources(cpu=a[0], memory=a[1], disk=a[2], gpu=a[3])


@dataclass(slots=True)
class NodeRank:
    node: NodeState
    rank: int = POSSIBLE
    reason: str = ""
    busy: bool = False

    @property
    def suitable(self) -> bool:
        return self.rank > UNSUITABLE

    @property
    def node_id(self) -> str:
        return self.node.info.node_id


def job_resources(job: Job) -> Resources:
    resources, _ = job.task.resources_config.parse()
    return resources


def execution_resources(execution: Execution) -> Resources:
    total = Resources()
    for task in execution.allocated_resources.tasks.values():
        total = total.add(task)
    return total


@dataclass
class CapacityTracker:
    """What the orchestrator has committed to each node: the resources of its live executions, with a running
    total per node so that ranking a node costs the same however many executions it holds."""

    allocations: dict[str, dict[str, Resources]] = field(default_factory=dict)
    _totals: dict[str, Resources] = field(default_factory=dict)
    _numbers: dict[str, Numbers] = field(default_factory=dict)  # the totals as plain numbers, for ranking

    def load(self, live_by_node: dict[str, list[Execution]]) -> None:
        for executions in live_by_node.values():
            for execution in executions:
                self._allocate(execution)

    def on_commit(self, effects: CommitEffects) -> None:
        for execution in effects.created_executions:
            if not execution.is_terminal:
                self._allocate(execution)
        for execution in effects.ended_executions:
            self._release(execution)

    def reserve(self, executions: list[Execution]) -> None:
        """Count executions a plan is about to create, before their commit, so that the next plans of the same
        scheduling round see the capacity taken (their commit counts them again, which changes nothing)."""
        for execution in executions:
            self._allocate(execution)

    def cancel_reservation(self, executions: list[Execution]) -> None:
        """The plan that reserved these was not applied."""
        for execution in executions:
            self._release(execution)

    def _allocate(self, execution: Execution) -> None:
        node = self.allocations.setdefault(execution.node_id, {})
        if execution.id in node:
            return
        node[execution.id] = resources = execution_resources(execution)
        self._set_total(execution.node_id, self.used(execution.node_id).add(resources))

    def _release(self, execution: Execution) -> None:
        resources = self.allocations.get(execution.node_id, {}).pop(execution.id, None)
        if resources is None:
            return
        if self.allocations[execution.node_id]:
            self._set_total(execution.node_id, self.used(execution.node_id).sub(resources))
        else:  # nothing left: start again from exact zero rather than from accumulated rounding
            del self.allocations[execution.node_id]
            self._totals.pop(execution.node_id, None)
            self._numbers.pop(execution.node_id, None)

    def _set_total(self, node_id: str, total: Resources) -> None:
        self._totals[node_id] = total
        self._numbers[node_id] = numbers(total)

    def used(self, node_id: str) -> Resources:
        return self._totals.get(node_id) or Resources()

    def used_numbers(self, node_id: str) -> Numbers:
        """``used`` as plain numbers (no model built: ranking asks this of every node for every job)."""
        return self._numbers.get(node_id, ZERO)

    def freed_by(self, executions: Iterable[Execution]) -> dict[str, Resources]:
        """Per node, what these executions hold of it (those it counts): the room that stopping them makes."""
        freed: dict[str, Resources] = {}
        for execution in executions:
            held = self.allocations.get(execution.node_id, {}).get(execution.id)
            if held is not None:
                freed[execution.node_id] = freed.get(execution.node_id, Resources()).add(held)
        return freed


@dataclass
class _NodeFacts:
    """What ranking needs of a node that changes only with its info (a node's handshake or info update replaces
    the info; heartbeats change its available capacity alone): its capacity as numbers, and the outcome of the
    checks that depend on the job's shape alone (engines, publisher, inputs, labels, maximum job size)."""

    info: NodeInfo
    compute: ComputeNodeInfo
    max_capacity: Resources
    capacity: Numbers
    oversubscribed: Numbers
    room: Numbers  # free capacity with nothing allocated
    static: dict[tuple[object, ...], tuple[int, str]] = field(default_factory=dict)

    def current(self, info: NodeInfo) -> bool:
        compute = info.compute_node_info
        return self.info is info and self.compute is compute and compute.max_capacity is self.max_capacity


@dataclass(frozen=True)
class _Change:
    """Per node, how a plan's view of used room differs from the tracker's: ``freed`` by executions it stops,
    ``taken`` by executions placed earlier in its transaction that the tracker counts only once that commits."""

    freed: dict[str, Numbers]
    taken: dict[str, Numbers]

    @classmethod
    def of(cls, tracker: CapacityTracker, stopping: Iterable[Execution], taking: Iterable[Execution]) -> _Change:
        taken: dict[str, Numbers] = {}
        for execution in taking:
            taken[execution.node_id] = _add(taken.get(execution.node_id, ZERO), numbers(execution_resources(execution)))
        return cls({node_id: numbers(r) for node_id, r in tracker.freed_by(stopping).items()}, taken)

    def __bool__(self) -> bool:
        return bool(self.freed or self.taken)

    def apply(self, node_id: str, used: Numbers) -> Numbers:
        released = self.freed.get(node_id)
        if released is not None:
            used = _sub(used, released)
        placed = self.taken.get(node_id)
        return _add(used, placed) if placed is not None else used


class NodeSelector:
    def __init__(self, tracker: CapacityTracker, *, over_subscription: float = 1.5, randomness: int = 5) -> None:
        self._tracker = tracker
        self._factor = over_subscription
        self._randomness = randomness
        self._random = random.Random()  # its own: nothing else seeding or drawing from the global one changes it
        self._facts: dict[str, _NodeFacts] = {}

    def rank(
        self,
        job: Job,
        nodes: Iterable[NodeState],
        executions: list[Execution],
        *,
        stopping: Iterable[Execution] = (),
        taking: Iterable[Execution] = (),
        limit: int | None = None,
    ) -> tuple[list[NodeRank], list[NodeRank]]:
        """Schedulable nodes split into (suitable best first, unsuitable with reasons); with ``limit``, only the
        best ``limit`` suitable ones (what placing that many executions needs: the rest are not built or sorted).

        ``stopping``: executions the plan being built stops; their room counts as free, as it will be when the plan
        commits (a job's new version takes the place of its old one's executions). ``taking``: executions not yet
        counted that will hold room when the transaction commits (placed earlier in it).

        This runs for every placement over every node, so a node costs a few dictionary lookups and some
        arithmetic on plain numbers: the checks that depend only on the job's shape and the node's info are kept
        per node (``_NodeFacts``), and no pydantic model is built unless a node is refused for being busy."""
        required_resources = job_resources(job)
        required = numbers(required_resources)
        shape = _shape(job, required)
        previous = _previous_executions(executions)
        freed = _Change.of(self._tracker, stopping, taking)
        suitable: list[NodeState] = []
        totals: list[int] = []
        free: list[Numbers] = []
        rejected: list[NodeRank] = []
        used_numbers = self._tracker.used_numbers
        draw = self._random.random
        randomness = self._randomness
        known = self._facts
        schedulable = 0
        enough = max(SAMPLE_SUITABLE, 2 * limit) if limit is not None else None
        for node in self._visiting_order(nodes, enough):
            if enough is not None and len(suitable) >= enough:
                break  # a sample: the nodes not seen yet are not rejected, only not looked at
            info = node.info
            if not (
                node.connection == _CONNECTED
                and node.membership == _APPROVED
                and info.node_type == _COMPUTE
                and info.compute_node_info is not None
            ):  # NodeState.is_schedulable, without its enum lookups (this loop is the cost of placement)
                continue
            schedulable += 1
            node_id = info.node_id
            facts = known.get(node_id)
            if facts is None or not facts.current(info):
                facts = self._node_facts(node)
            static = facts.static.get(shape)
            if static is None:
                if len(facts.static) >= SHAPES_PER_NODE:
                    facts.static.clear()
                static = facts.static[shape] = _static_rank(job, node, required_resources)
            total, reason = static
            if total == UNSUITABLE:
                rejected.append(NodeRank(node, UNSUITABLE, reason))
                continue
            if previous:
                count, excluded = previous.get(node_id, (0, False))
                if count > 1:
                    rejected.append(NodeRank(node, UNSUITABLE, "job already executed on this node more than once"))
                    continue
                if excluded:
                    rejected.append(NodeRank(node, UNSUITABLE, "job rejected"))
                    continue
                total += POSSIBLE if count else FRESH_NODE_BONUS
            else:
                total += FRESH_NODE_BONUS
            used = used_numbers(node_id)
            if freed:
                used = freed.apply(node_id, used)
            if facts.capacity == ZERO:
                rejected.append(NodeRank(node, UNSUITABLE, "node queue usage is unknown", busy=True))
                continue
            ceiling = facts.oversubscribed
            if used is ZERO:  # nothing allocated there: the node's own figures, worked out once
                fits = _fits(required, ceiling)
                room = facts.room
            else:
                fits = _fits(_add(used, required), ceiling)
                room = _sub(facts.capacity, used)
            if not fits:
                reason = f"node busy with available capacity {_resources(room).describe()}"
                rejected.append(NodeRank(node, UNSUITABLE, reason, busy=True))
                continue
            if randomness > 0:
                total += int(draw() * randomness)  # as randrange(randomness): uniform over 0 .. randomness - 1
            suitable.append(node)
            totals.append(total)
            free.append(room)
        finals = [total + score for total, score in zip(totals, _capacity_scores(free), strict=True)]
        indexes = range(len(finals))
        if limit is not None and limit < len(finals):  # as sorted()[:limit], ties in the same order
            best = heapq.nlargest(limit, indexes, key=finals.__getitem__)
        else:
            best = sorted(indexes, key=finals.__getitem__, reverse=True)
        if enough is None or len(suitable) < enough:  # every node was seen
            self._forget_departed(schedulable)
        return [NodeRank(suitable[i], finals[i], "suitable") for i in best], rejected

    def _visiting_order(self, nodes: Iterable[NodeState], enough: int | None) -> Iterable[NodeState]:
        """All the nodes, from a random one on when only a sample is wanted (so that samples differ)."""
        if enough is None:
            return nodes
        listed = list(nodes)
        if len(listed) <= enough:
            return listed
        start = self._random.randrange(len(listed))
        return itertools.chain(listed[start:], listed[:start])

    def headroom(
        self, node: NodeState, *, stopping: Iterable[Execution] = (), taking: Iterable[Execution] = ()
    ) -> Resources:
        """What more a node may be given (its capacity over-subscribed, less what it holds), seen as by :meth:`rank`
        with the same ``stopping`` and ``taking``."""
        compute = node.info.compute_node_info
        if compute is None or not node.is_schedulable:
            return Resources()
        used = _Change.of(self._tracker, stopping, taking).apply(
            node.info.node_id, self._tracker.used_numbers(node.info.node_id)
        )
        return _resources(_sub(numbers(compute.max_capacity.scale(self._factor)), used))

    def _node_facts(self, node: NodeState) -> _NodeFacts:
        """A node's facts, worked out again (it is new, or its info changed)."""
        info = node.info
        compute = info.compute_node_info
        assert compute is not None  # schedulable nodes are compute nodes
        capacity = numbers(compute.max_capacity)
        oversubscribed = numbers(compute.max_capacity.scale(self._factor))
        facts = _NodeFacts(info, compute, compute.max_capacity, capacity, oversubscribed, _sub(capacity, ZERO))
        self._facts[info.node_id] = facts
        return facts

    def _forget_departed(self, schedulable: int) -> None:
        """Drop the facts of nodes no longer seen, once they are as many as the nodes that are."""
        if len(self._facts) > 2 * schedulable + 64:
            self._facts.clear()


_COMPUTE = NodeType.COMPUTE.value
_APPROVED = Membership.APPROVED.value
_CONNECTED = Connection.CONNECTED.value


def _shape(job: Job, required: Numbers) -> tuple[object, ...]:
    """What the static checks read of a job: two jobs of the same shape get the same answer from a node."""
    task = job.task
    return (
        task.engine_spec.type,
        task.publisher_spec.type,
        tuple(s.source.type if s.source else None for s in task.input_sources),
        tuple((c.key, c.operator, tuple(c.values)) for c in job.constraints),
        required,
    )


def _static_rank(job: Job, node: NodeState, required: Resources) -> tuple[int, str]:
    """The score from the checks that depend only on the job's shape and the node's info, or UNSUITABLE and why."""
    compute = node.info.compute_node_info
    assert compute is not None
    task = job.task
    total = 0
    checks = [
        _feature(task.engine_spec.type, compute.execution_engines),
        _feature(task.publisher_spec.type, compute.publishers) if task.publisher_spec.type else None,
        *(_feature(s.source.type, compute.storage_sources) for s in task.input_sources if s.source),
    ]
    for reason in checks:
        if reason:
            return UNSUITABLE, reason
    total += 30 if task.input_sources else 20

    labels_rank, reason = _labels(job, node.info.labels)
    if labels_rank == UNSUITABLE:
        return UNSUITABLE, reason
    total += labels_rank

    if not required.is_zero():
        if not required.fits_in(compute.max_job_requirements):
            return UNSUITABLE, _too_big(required, compute.max_job_requirements)
        total += PREFERRED
    return total, ""


def _capacity_scores(free: list[Numbers]) -> list[int]:
    """Up to 100 points for each node's free capacity (``free``), relative to the freest node (CPU and memory
    weigh most). Nodes with the same room get the same points, worked out once (a fleet's idle nodes alike cost
    one)."""
    if not free:
        return []
    top_cpu, top_memory, top_disk, top_gpu = free[0]
    for room in set(free):  # idle nodes alike share their room's numbers
        top_cpu, top_memory = max(top_cpu, room[0]), max(top_memory, room[1])
        top_disk, top_gpu = max(top_disk, room[2]), max(top_gpu, room[3])
    points: dict[Numbers, int] = {}
    scores: list[int] = []
    for room in free:
        score = points.get(room)
        if score is None:
            have_cpu, have_memory, have_disk, have_gpu = room
            share = sum(
                (
                    0.4 * (have_cpu / top_cpu if top_cpu else 0.0),
                    0.3 * (have_memory / top_memory if top_memory else 0.0),
                    0.2 * (have_disk / top_disk if top_disk else 0.0),
                    0.1 * (have_gpu / top_gpu if top_gpu else 0.0),
                )
            )
            score = points[room] = int(share * 100)
        scores.append(score)
    return scores


def _previous_executions(executions: list[Execution]) -> dict[str, tuple[int, bool]]:
    """Per node: how many times this job ran there, and whether that rules the node out.

    As in the original: a node that failed the job once is ranked down (others are preferred for the retry), a node
    that ran it twice, still runs it, completed it or refused to bid is ruled out.
    """
    result: dict[str, tuple[int, bool]] = {}
    for execution in executions:
        count, excluded = result.get(execution.node_id, (0, False))
        excluded = (
            excluded or not execution.state.is_discarded or execution.state == ExecutionStateType.ASK_FOR_BID_REJECTED
        )
        result[execution.node_id] = (count + 1, excluded)
    return result


def _feature(required: str, provided: list[str]) -> str:
    if any(p.lower() == required.lower() for p in provided):
        return ""
    return f"does not support {required}, only {', '.join(provided)}"


def _labels(job: Job, labels: dict[str, str]) -> tuple[int, str]:
    must = [c for c in job.constraints if not c.key.startswith(FAVOUR_PREFIX)]
    favour = [c for c in job.constraints if c.key.startswith(FAVOUR_PREFIX)]
    rank = POSSIBLE
    if must:
        if not all(c.matches(labels) for c in must):
            shown = ", ".join(c.describe() for c in must)
            pairs = " ".join(f"{k}:{v}" for k, v in sorted(labels.items()))
            return UNSUITABLE, f"labels map[{pairs}] don't match required selectors [{shown}]"
        rank = PREFERRED
    if favour:
        trimmed = [c.model_copy(update={"key": c.key.removeprefix(FAVOUR_PREFIX)}) for c in favour]
        if all(c.matches(labels) for c in trimmed):
            rank += PREFERRED
    return rank, ""


def _too_big(requested: Resources, maximum: Resources) -> str:
    reasons = []
    if requested.cpu > maximum.cpu + 1e-9:
        reasons.append(f"more CPU ({requested.cpu:g}) than the maximum available ({maximum.cpu:g})")
    if requested.memory > maximum.memory:
        reasons.append(
            f"more memory ({format_bytes(requested.memory)}) than the maximum available "
            f"({format_bytes(maximum.memory)})"
        )
    if requested.disk > maximum.disk:
        reasons.append(
            f"more disk ({format_bytes(requested.disk)}) than the maximum available ({format_bytes(maximum.disk)})"
        )
    if requested.gpu > maximum.gpu:
        reasons.append(f"more GPUs ({requested.gpu}) than the maximum available ({maximum.gpu})")
    return "job requires " + " and ".join(reasons)


def not_enough_nodes_message(requested: int, ranks: list[NodeRank]) -> str:
    """The original's ``not enough nodes to run job`` message, one line per reason."""
    suitable = sum(1 for r in ranks if r.suitable)
    header = f"not enough nodes to run job. requested: {requested}, available: {len(ranks)}, suitable: {suitable}."
    return _with_reasons(header, ranks)


def no_matching_nodes_message(ranks: list[NodeRank]) -> str:
    """The original's message when an ops job matches no node at all."""
    return _with_reasons(f"not matching nodes to run job out of {len(ranks)} available nodes.", ranks)


def _with_reasons(header: str, ranks: list[NodeRank]) -> str:
    lines = [header]
    by_reason: dict[str, list[NodeRank]] = {}
    for rank in ranks:
        if not rank.suitable:
            by_reason.setdefault(rank.reason, []).append(rank)
    for reason, group in by_reason.items():
        who = f"{len(group)} of {len(ranks)} nodes" if len(group) > 1 else f"Node {short_id(group[0].node_id)}"
        lines.append(f"• {who}: {reason}")
    return "\n".join(lines)
