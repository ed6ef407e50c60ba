"""Bounds on everything a client controls, declared once.

The wire models carry them as annotated types (``models/fields.py``) on every field a submission can set, so that
decoding a request already refuses what is too long, too many or out of range (a 400 naming the field), and the
OpenAPI document states each bound; the numbers stand alone here, cheap to import for the CLI and the config.
Numbers follow the Go types the original declares (a job's ``Priority`` is an ``int``, a timeout an ``int64`` of
seconds): nothing past them can reach the store or the scheduler's arithmetic. The original declares no lengths;
ours are generous for any real job and small enough that no single field can cost a node more than the request did.

Operators tune the count of one job (``Orchestrator.JobLimits.MaxCount``); everything else here is fixed.
"""

from __future__ import annotations

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

# A request body, and so a whole job spec with its inline data: the original's limit (its framework's BodyLimit).
MAX_BODY_BYTES = 10 * 1024 * 1024

# The longest duration Go's time.Duration holds (about 292 years), in whole seconds: a timeout beyond it overflows the
# original's arithmetic and ours (deadlines are Unix nanoseconds in an int64).
MAX_DURATION_SECONDS = INT64_MAX // 10**9

# How many partitions one job may ask for unless the operator says otherwise: each partition is a real execution
# with its own records, and a thousand is more than any one cluster of ours runs at once.
DEFAULT_MAX_COUNT = 1000

MAX_NAME_LENGTH = 255  # job and task names, namespaces, IDs, plugin types, result names: the original's draft limit
MAX_KEY_LENGTH = 255  # label, meta and env keys; constraint keys
MAX_LABEL_VALUE_LENGTH = 255
MAX_META_VALUE_LENGTH = 4096
MAX_ENV_VALUE_LENGTH = 64 * 1024  # room for a certificate or a small config file
MAX_PATH_LENGTH = 4096  # Linux's PATH_MAX: result paths and input targets
MAX_MESSAGE_LENGTH = 4096  # a stop reason
MAX_ENTRIES = 64  # labels, meta, constraints and their values, result paths, tasks, network domains
MAX_PORTS = 32  # published ports of one task: each is a host port held while the task runs
MAX_ADDRESS_LENGTH = 64  # an IP address as text (a port's HostNetwork)
MAX_ENV_ENTRIES = 256
MAX_INPUTS = 256
MAX_PARAMS_DEPTH = 32  # nesting of a plugin's free-form parameters (objects and arrays)

# The web UI's own routes (api/routes/ui.py): a page of jobs, and the text of a filter (a label selector, a part of a
# name) in a query string.
MAX_UI_PAGE = 100
MAX_FILTER_LENGTH = 1024
