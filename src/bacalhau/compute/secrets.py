"""Task environment values of the form ``env:NAME``: copied from the compute node's own environment at run time,
but only for names the node allows (``Compute.Env.AllowList``, globs such as ``AWS_*``). The job spec holds the
reference, never the value, so secrets are neither stored nor shown by the API."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping

PREFIX = "env:"


class EnvResolver:
    def __init__(self, allow_list: list[str], environ: Mapping[str, str] | None = None) -> None:
        self._allowed = [pattern.strip() for pattern in allow_list if pattern.strip()]
        self._environ = environ if environ is not None else os.environ

    def _allowed_name(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self._allowed)

    def problems(self, env: Mapping[str, str]) -> list[str]:
        """Why this node cannot supply the task's environment (empty when it can)."""
        problems = []
        for key, value in env.items():
            if not value.startswith(PREFIX):
                continue
            name = value[len(PREFIX) :]
            if not self._allowed_name(name):
                problems.append(
                    f"environment variable {key} refers to host variable {name}, which this node does not allow "
                    "(Compute.Env.AllowList)"
                )
            elif name not in self._environ:
                problems.append(f"environment variable {key} refers to host variable {name}, which is not set")
        return problems

    def resolve(self, env: Mapping[str, str]) -> dict[str, str]:
        """The task's environment with every allowed ``env:NAME`` replaced by the host's value."""
        problems = self.problems(env)
        if problems:
            raise ValueError("; ".join(problems))
        return {
            key: self._environ[value[len(PREFIX) :]] if value.startswith(PREFIX) else value
            for key, value in env.items()
        }
