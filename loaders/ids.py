"""Opaque global ids: base64 of "<Type>:<integer key>", as Relay clients expect."""

from __future__ import annotations

import base64
import binascii

from loaders.errors import BadUserInput

# Keys are 32-bit integers on PostgreSQL: no id we issue holds a larger one, and
# binding one would fail the statement.
MAX_KEY = 2**31 - 1


def encode_id(type_name: str, key: int) -> str:
    # binascii straight: base64.b64encode is this call behind a Python frame, and a
    # page of ten thousand deals encodes as many ids.
    return binascii.b2a_base64(f"{type_name}:{key}".encode(), newline=False).decode()


def decode_any_id(global_id: str) -> tuple[str, int]:
    """Return (type name, key), or raise BadUserInput for anything that is not one of ours."""
    try:
        raw = base64.b64decode(global_id.encode(), validate=True).decode()
        type_name, _, key = raw.partition(":")
        if not type_name or not key.isdigit() or len(key) > 10 or int(key) > MAX_KEY:
            raise ValueError(raw)
        return type_name, int(key)
    except (ValueError, binascii.Error, UnicodeError):
        raise BadUserInput(f"{global_id!r} is not a valid ID") from None


def decode_id(global_id: str, type_name: str) -> int:
    """The key of an id that must name a ``type_name``."""
    found, key = decode_any_id(global_id)
    if found != type_name:
        raise BadUserInput(f"ID {global_id!r} is a {found}, not a {type_name}")
    return key


def decode_optional_id(global_id: str | None, type_name: str) -> int | None:
    """decode_id for an optional argument: None stays None."""
    return decode_id(global_id, type_name) if global_id is not None else None
