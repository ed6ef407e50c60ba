"""Property-based fuzzing of the job template engine (lib/gotemplate): whatever the text, rendering gives a string or
the module's own error, within its bounds. The unit tests run a few hundred cases; raise the count here:
``BACALHAU_FUZZ_EXAMPLES=20000 BACALHAU_FUZZ_RANDOM=1 .venv/bin/pytest tests/fuzz/test_template_fuzz.py``."""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bacalhau.lib.gotemplate import Template, TemplateError
from tests.strategies import template_programs, template_text

EXAMPLES = int(os.environ.get("BACALHAU_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("BACALHAU_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DATA = {"A": "x", "B": "b", "E": "", "N": "2", "Pct": "x%d", "Word": "héllo"}


@FUZZ
@given(st.one_of(template_text, template_programs, st.text(max_size=80)))
def test_any_template_renders_or_fails_cleanly_and_soon(text: str) -> None:
    started = time.monotonic()
    try:
        output = Template.parse(text).execute(DATA, max_output=100_000, max_steps=20_000)
    except TemplateError as exc:
        assert exc.message.startswith("template: ")
    else:
        assert isinstance(output, str) and len(output) <= 100_000
    assert time.monotonic() - started < 5
