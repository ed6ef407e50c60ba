"""Input sources, by the type name used in job specs."""

from __future__ import annotations

from bacalhau.compute.inputs.base import InputProvider
from bacalhau.compute.inputs.inline import InlineInput


def default_inputs() -> dict[str, InputProvider]:
    providers: list[InputProvider] = [InlineInput()]
    return {p.name: p for p in providers if p.is_installed()}
