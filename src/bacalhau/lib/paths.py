"""Paths built from strings that someone else chose (an ID in a message, a file name from a URL or an object key):
each is checked to stay inside its folder before anything is read or written there."""

from __future__ import annotations

from pathlib import Path


class UnsafePath(ValueError):
    """A name or relative path that would lead outside the folder it was meant for."""


def is_plain_name(name: str) -> bool:
    """Whether ``name`` is one path segment that names something inside a folder (not the folder or its parent)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def child(folder: Path, name: str) -> Path:
    """``folder / name`` for a name that must be one plain path segment."""
    if not is_plain_name(name):
        raise UnsafePath(f"{name!r} is not a plain file or folder name")
    return folder / name


def within(folder: Path, relative: str) -> Path:
    """``folder / relative`` (any number of segments), resolved through ``..`` and symlinks; refused unless it stays
    inside ``folder``."""
    if "\x00" in relative:
        raise UnsafePath(f"{relative!r} holds a null character")
    base = folder.resolve()
    path = (base / relative).resolve()
    if path == base or not path.is_relative_to(base):
        raise UnsafePath(f"{relative!r} leads outside {folder}")
    return path
