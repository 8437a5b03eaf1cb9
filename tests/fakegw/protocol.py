"""TWS API wire format: length-prefixed frames of NUL-terminated text fields.

Only framing and scalar encoding live here; message layouts are in
``messages.py`` (server to client) and ``requests.py`` (client to server).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

API_PREFIX = b"API\0"
UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
UNSET_DOUBLE_TEXT = "1.7976931348623157E308"

#: Lowest server version ib_insync / ib_async accept.
MIN_SERVER_VERSION = 157
#: Highest client version ib_async 2.1.0 offers.
MAX_SERVER_VERSION = 178


class ProtocolError(Exception):
    """The client sent bytes the fake cannot make sense of."""


def encode_value(value: object) -> str:
    """Render one field the way a real gateway would.

    ``None`` is empty, booleans are ``0``/``1``, integers plain text, floats
    as ``repr`` (so seeded prices round-trip exactly); the IB "unset" double
    is sent as IB spells it.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value >= UNSET_DOUBLE:
            return UNSET_DOUBLE_TEXT
        return repr(value if value != 0 else 0.0)
    return str(value)


def encode_payload(fields: Iterable[object]) -> bytes:
    """Join fields into a payload, each terminated by NUL."""
    parts = [encode_value(f) for f in fields]
    if not parts:
        raise ProtocolError("refusing to send an empty message")
    return ("\0".join(parts) + "\0").encode("utf-8")


def frame(payload: bytes) -> bytes:
    """Prefix a payload with its 4-byte big-endian length."""
    return struct.pack(">I", len(payload)) + payload


def encode_message(fields: Iterable[object]) -> bytes:
    """Encode and frame one message."""
    return frame(encode_payload(fields))


def split_fields(payload: bytes) -> list[str]:
    """Split a NUL-terminated payload into text fields (as the clients do)."""
    text = payload.decode("utf-8", errors="backslashreplace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_version_range(payload: bytes) -> tuple[int, int, str]:
    """Parse the handshake text ``v<min>..<max>[ options]``.

    Returns:
        ``(min_version, max_version, options)``.

    Raises:
        ProtocolError: if the text is not a version range.
    """
    text = payload.decode("ascii", errors="replace").rstrip("\0")
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise ProtocolError(f"bad handshake {text!r}")
    lo, sep, hi = head[1:].partition("..")
    try:
        low = int(lo)
        high = int(hi) if sep else low
    except ValueError as exc:
        raise ProtocolError(f"bad handshake {text!r}") from exc
    return low, high, options


class FrameReader:
    """Incremental decoder for the client byte stream.

    The stream starts with the raw ``API\\0`` prefix, then length-prefixed
    frames. The first frame is the version range (no trailing NUL); the
    caller tells them apart by order.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._prefix_seen = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return every complete frame payload now available."""
        self._buf += data
        out: list[bytes] = []
        if not self._prefix_seen:
            if len(self._buf) < len(API_PREFIX):
                return out
            if not self._buf.startswith(API_PREFIX):
                raise ProtocolError(f"expected API prefix, got {self._buf[:4]!r}")
            self._buf = self._buf[len(API_PREFIX) :]
            self._prefix_seen = True
        while len(self._buf) >= 4:
            (size,) = struct.unpack(">I", self._buf[:4])
            if len(self._buf) < 4 + size:
                break
            out.append(self._buf[4 : 4 + size])
            self._buf = self._buf[4 + size :]
        return out
