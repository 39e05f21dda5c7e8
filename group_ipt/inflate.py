"""Unpack gzip bodies within a limit that is checked while inflating, one at a time per slot.

A few kilobytes of gzip can inflate to gigabytes. ``inflate`` feeds the decompressor in
small steps and asks it for at most what is still allowed, so it stops as soon as the
limit is passed and never holds more than the limit; ``SLOTS`` lets only a few bodies be
inflated and parsed at once, so many large requests together cannot add up (eight at
128 MB each took a server to 1.2 GB).
"""

from __future__ import annotations

import json
import threading
import zlib

STEP = 64 * 1024
SLOTS = threading.BoundedSemaphore(2)


class TooLarge(ValueError):
    """The body unpacks to more than the limit."""


class Unreadable(ValueError):
    """The body is not gzip, or not JSON once unpacked."""


def inflate(blob: bytes, limit: int) -> bytearray:
    """Return the gzip ``blob`` unpacked; TooLarge as soon as it passes ``limit`` bytes."""
    decompressor = zlib.decompressobj(wbits=31)  # gzip header and trailer
    out = bytearray()
    view = memoryview(blob)
    try:
        for start in range(0, len(view), STEP):
            data = bytes(view[start:start + STEP])
            while data:
                # At most one STEP out per call: the unpacked pieces never pile up beside ``out``.
                out += decompressor.decompress(data, min(STEP, limit + 1 - len(out)))
                if len(out) > limit:
                    raise TooLarge(f"The unpacked body is larger than {limit} bytes.")
                data = decompressor.unconsumed_tail
            while not decompressor.eof:  # output still held back after the input was all taken
                piece = decompressor.decompress(b"", min(STEP, limit + 1 - len(out)))
                if not piece:
                    break
                out += piece
                if len(out) > limit:
                    raise TooLarge(f"The unpacked body is larger than {limit} bytes.")
            if decompressor.eof:
                break
        if not decompressor.eof:
            raise Unreadable("The body is not valid gzip data: it ends too early.")
    except zlib.error as exc:
        raise Unreadable(f"The body is not valid gzip data: {exc}") from exc
    return out


def inflate_json(blob: bytes, limit: int, *, parse_constant=None) -> object:
    """Unpack and parse a gzip JSON body within ``limit`` bytes, in one of the few ``SLOTS``."""
    with SLOTS:
        raw = inflate(blob, limit)
        try:
            return json.loads(raw, parse_constant=parse_constant) if parse_constant else json.loads(raw)
        except ValueError as exc:
            raise Unreadable(f"The body is not valid JSON: {exc}") from exc
