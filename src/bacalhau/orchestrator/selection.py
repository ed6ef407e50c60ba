"""Node selection: which approved, connected compute nodes can take a job, best first, and why the others can't.

Ranks follow the original's ranker chain: each ranker scores a node, -1 makes it unsuitable (with a reason), the
scores of suitable nodes add up. A node rejected only because it is busy right now is marked ``busy``, which lets
the scheduler queue the job instead of failing it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from bacalhau.models.execution import Execution
from bacalhau.models.ids import short_id
from bacalhau.models.job import Job
from bacalhau.models.node import NodeState
from bacalhau.models.resources import Resources, format_bytes
from bacalhau.models.state import ExecutionStateType
from bacalhau.orchestrator.store import CommitEffects

UNSUITABLE = -1
POSSIBLE = 0
PREFERRED = 10
FAVOUR_PREFIX = "favour_"
# A node that has not failed this job outranks any node that has, whatever their free capacity: retries go
# elsewhere when they can.
FRESH_NODE_BONUS = 200


@dataclass
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
        self._totals[execution.node_id] = self.used(execution.node_id).add(resources)

    def _release(self, execution: Execution) -> None:
        resources = self.allocations.get(execution.node_id, {}).pop(execution.id, None)
        if resources is None:
            return
        if self.allocations[execution.node_id]:
            self._totals[execution.node_id] = self.used(execution.node_id).sub(resources)
        else:  # nothing left: start again from exact zero rather than from accumulated rounding
            del self.allocations[execution.node_id]
            self._totals.pop(execution.node_id, None)

    def used(self, node_id: str) -> Resources:
        return self._totals.get(node_id) or Resources()

    def freed_by(self, executions: Iterable[Execution]) -> dict[str, Resources]:
        """Per node, what these executions hold of it (those it counts): the room that stopping them makes."""
        freed: dict[str, Resources] = {}
        for execution in executions:
            held = self.allocations.get(execution.node_id, {}).get(execution.id)
            if held is not None:
                freed[execution.node_id] = freed.get(execution.node_id, Resources()).add(held)
        return freed


@dataclass(frozen=True)
class _Change:
    """Per node, how a plan's view of used room differs from the tracker's: ``freed`` by executions it stops,
    ``taken`` by executions placed earlier in its transaction that the tracker counts only once that commits."""

    freed: dict[str, Resources]
    taken: dict[str, Resources]


def _held_by(executions: Iterable[Execution]) -> dict[str, Resources]:
    held: dict[str, Resources] = {}
    for execution in executions:
        held[execution.node_id] = held.get(execution.node_id, Resources()).add(execution_resources(execution))
    return held


class NodeSelector:
    def __init__(self, tracker: CapacityTracker, *, over_subscription: float = 1.5, randomness: int = 5) -> None:
        self._tracker = tracker
        self._factor = over_subscription
        self._randomness = randomness
        self._random = random.Random()  # its own: nothing else seeding or drawing from the global one changes it

    def rank(
        self,
        job: Job,
        nodes: Iterable[NodeState],
        executions: list[Execution],
        *,
        stopping: Iterable[Execution] = (),
        taking: Iterable[Execution] = (),
    ) -> tuple[list[NodeRank], list[NodeRank]]:
        """Schedulable nodes split into (suitable best first, unsuitable with reasons).

        ``stopping``: executions the plan being built stops; their room counts as free, as it will be when the plan
        commits (a job's new version takes the place of its old one's executions). ``taking``: executions not yet
        counted that will hold room when the transaction commits (placed earlier in it)."""
        candidates = [node for node in nodes if node.is_schedulable]
        required = job_resources(job)
        previous = _previous_executions(executions)
        change = _Change(self._tracker.freed_by(stopping), _held_by(taking))
        matched: list[NodeRank] = []
        rejected: list[NodeRank] = []
        for node in candidates:
            result = self._rank_node(job, node, required, previous, self._used(node, change))
            (matched if result.suitable else rejected).append(result)
        self._add_capacity_scores(matched, change)
        matched.sort(key=lambda r: r.rank, reverse=True)
        return matched, rejected

    def headroom(
        self, node: NodeState, *, stopping: Iterable[Execution] = (), taking: Iterable[Execution] = ()
    ) -> Resources:
        """What more a node may be given (its capacity over-subscribed, less what it holds), seen as by :meth:`rank`
        with the same ``stopping`` and ``taking``."""
        compute = node.info.compute_node_info
        if compute is None or not node.is_schedulable:
            return Resources()
        change = _Change(self._tracker.freed_by(stopping), _held_by(taking))
        return compute.max_capacity.scale(self._factor).sub(self._used(node, change))

    def _used(self, node: NodeState, change: _Change) -> Resources:
        node_id = node.info.node_id
        used = self._tracker.used(node_id)
        released = change.freed.get(node_id)
        taken = change.taken.get(node_id)
        used = used.sub(released) if released is not None else used
        return used.add(taken) if taken is not None else used

    def _add_capacity_scores(self, ranks: list[NodeRank], change: _Change) -> None:
        """Up to 100 points for free capacity, relative to the freest node (CPU and memory weigh most)."""
        free = {r.node_id: self._free(r.node, change) for r in ranks}
        best = Resources(
            cpu=max((f.cpu for f in free.values()), default=0.0),
            memory=max((f.memory for f in free.values()), default=0),
            disk=max((f.disk for f in free.values()), default=0),
            gpu=max((f.gpu for f in free.values()), default=0),
        )
        for rank in ranks:
            mine = free[rank.node_id]
            share = sum(
                weight * (have / top if top else 0.0)
                for weight, have, top in (
                    (0.4, mine.cpu, best.cpu),
                    (0.3, mine.memory, best.memory),
                    (0.2, mine.disk, best.disk),
                    (0.1, mine.gpu, best.gpu),
                )
            )
            rank.rank += int(share * 100)

    def _free(self, node: NodeState, change: _Change) -> Resources:
        compute = node.info.compute_node_info
        assert compute is not None
        return compute.max_capacity.sub(self._used(node, change))

    def _rank_node(
        self, job: Job, node: NodeState, required: Resources, previous: dict[str, tuple[int, bool]], used: Resources
    ) -> NodeRank:
        compute = node.info.compute_node_info
        assert compute is not None  # schedulable nodes are compute nodes
        task = job.task
        total = 0
        checks = [
            _feature(task.engine_spec.type, compute.execution_engines),
            _feature(task.publisher_spec.type, compute.publishers) if task.publisher_spec.type else None,
            *(_feature(s.source.type, compute.storage_sources) for s in task.input_sources if s.source),
        ]
        for reason in checks:
            if reason:
                return NodeRank(node, UNSUITABLE, reason)
        total += 30 if task.input_sources else 20

        labels_rank, reason = _labels(job, node.info.labels)
        if labels_rank == UNSUITABLE:
            return NodeRank(node, UNSUITABLE, reason)
        total += labels_rank

        if not required.is_zero():
            if not required.fits_in(compute.max_job_requirements):
                return NodeRank(node, UNSUITABLE, _too_big(required, compute.max_job_requirements))
            total += PREFERRED

        count, excluded = previous.get(node.info.node_id, (0, False))
        if count > 1:
            return NodeRank(node, UNSUITABLE, "job already executed on this node more than once")
        if excluded:
            return NodeRank(node, UNSUITABLE, "job rejected")
        total += POSSIBLE if count else FRESH_NODE_BONUS

        if compute.max_capacity.is_zero():
            return NodeRank(node, UNSUITABLE, "node queue usage is unknown", busy=True)
        if not used.add(required).fits_in(compute.max_capacity.scale(self._factor)):
            available = compute.max_capacity.sub(used)
            return NodeRank(node, UNSUITABLE, f"node busy with available capacity {available.describe()}", busy=True)
        total += self._random.randrange(self._randomness) if self._randomness > 0 else 0
        return NodeRank(node, total, "suitable")


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
