"""Reading update inputs: which fields the client sent."""

from __future__ import annotations

import dataclasses
from typing import Any

from strawberry import UNSET

# Fields that say which record and which version, not what to change.
_ADDRESSING = frozenset({"id", "expected_version"})


def sent_changes(input: Any) -> dict[str, Any]:
    """The fields of an update input the client sent, null included (null clears a
    field; a field left out stays as it is). Nested inputs become plain dicts."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(input):
        value = getattr(input, field.name)
        if field.name in _ADDRESSING or value is UNSET:
            continue
        changes[field.name] = vars(value) if dataclasses.is_dataclass(value) else value
    return changes
