"""Global options after the command: ``bacalhau job list --profile prod`` works as the original's persistent flags do.

Click only reads the root group's options before the command name, so they are moved there before parsing.
"""

from __future__ import annotations

_GLOBAL_OPTIONS = ("--profile", "--api-host", "--api-port", "--data-dir", "--log-level")
_CONFIG_OPTIONS = ("-c", "--config")
_ROOT_VALUE_OPTIONS = {*_GLOBAL_OPTIONS, *_CONFIG_OPTIONS}
# ``-c`` also follows these (``bacalhau serve --config node.yaml``); elsewhere it may be a container's own ``sh -c``
# or ``config set``'s file, so it stays where it is.
_CONFIG_AFTER = (("serve",), ("devstack",), ("config", "list"))


def hoist_global_options(args: list[str]) -> list[str]:
    """``bacalhau <command...> --profile x`` as ``bacalhau --profile x <command...>`` (never past ``--``)."""
    start = _command_index(args)
    movable: tuple[str, ...] = _GLOBAL_OPTIONS
    if any(tuple(args[start : start + len(words)]) == words for words in _CONFIG_AFTER):
        movable = (*_GLOBAL_OPTIONS, *_CONFIG_OPTIONS)
    hoisted: list[str] = []
    kept: list[str] = []
    index = start
    while index < len(args):
        arg = args[index]
        if arg == "--":
            kept.extend(args[index:])
            break
        if arg.split("=", 1)[0] in movable:
            size = 1 if "=" in arg else 2
            hoisted.extend(args[index : index + size])
            index += size
            continue
        kept.append(arg)
        index += 1
    return [*args[:start], *hoisted, *kept]


def _command_index(args: list[str]) -> int:
    """Where the command name starts: after the root options and their values."""
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        arg = args[index]
        index += 2 if "=" not in arg and arg in _ROOT_VALUE_OPTIONS else 1
    return index
