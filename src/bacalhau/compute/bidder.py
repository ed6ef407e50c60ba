"""Bidding: whether this node can take an execution at all (capabilities and maximum capacity).

Current load is not a reason to refuse: accepted work waits in the executor buffer until capacity frees up, and
the orchestrator's over-subscription limit keeps that wait short.
"""

from __future__ import annotations

from dataclasses import dataclass

from bacalhau.compute.admission import JobAdmission
from bacalhau.compute.capacity import task_usage
from bacalhau.compute.executors.base import Executor
from bacalhau.compute.inputs.base import InputProvider
from bacalhau.compute.publishers.base import Publisher
from bacalhau.compute.secrets import EnvResolver
from bacalhau.lib.paths import is_plain_name
from bacalhau.models.execution import Execution
from bacalhau.models.resources import Resources
from bacalhau.models.spec import RESULT_NAME_RULE, is_result_name


@dataclass
class BidDecision:
    accepted: bool
    reason: str = ""
    usage: Resources | None = None


class Bidder:
    def __init__(
        self,
        executors: dict[str, Executor],
        inputs: dict[str, InputProvider],
        publishers: dict[str, Publisher],
        maximum: Resources,
        env: EnvResolver,
        admission: JobAdmission | None = None,
    ) -> None:
        self._env = env
        self.admission = admission
        self._executors = executors
        self._inputs = inputs
        self._publishers = publishers
        self.maximum = maximum  # the node sets it again once it has found its GPUs

    def decide(self, execution: Execution) -> BidDecision:
        job = execution.job
        if job is None or not job.tasks:
            return BidDecision(False, "the request carries no job")
        if not is_plain_name(execution.id):  # it names the execution's folder on this node
            return BidDecision(False, f"invalid execution ID {execution.id!r}")
        task = job.task
        reasons = self.admission.reasons_now(job) if self.admission is not None else []
        reasons += [
            f"result name {result.name!r} {RESULT_NAME_RULE}"
            for result in task.result_paths
            if not is_result_name(result.name)
        ]
        engine = task.engine_spec.type
        executor = self._executors.get(engine)
        if executor is None:
            reasons.append(f"node does not support engine {engine}")
        else:
            reasons += executor.validate(task.engine_spec, task.network_config)
        publisher = task.publisher_spec.type
        if publisher and publisher not in self._publishers:
            reasons.append(f"node does not support publisher {publisher}")
        for source in task.input_sources:
            kind = source.source.type if source.source else ""
            if kind not in self._inputs:
                reasons.append(f"node does not support input source {kind}")
        reasons += self._env.problems(task.env)
        requested, errors = task.resources_config.parse()
        reasons += errors
        usage = task_usage(requested)
        if not errors and not usage.fits_in(self.maximum):
            too_much = ", ".join(usage.exceeded_dimensions(self.maximum))
            reasons.append(
                f"not enough capacity to run job: it needs more {too_much} than this node offers "
                f"(needs {usage.describe()}, node has {self.maximum.describe()})"
            )
        if usage.gpu and executor is not None and not getattr(executor, "supports_gpus", False):
            reasons.append(f"the {engine} engine cannot give GPUs to a task, and the job asks for {usage.gpu}")
        if reasons:
            return BidDecision(False, "; ".join(reasons))
        return BidDecision(True, usage=usage)
