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
from collections.abc import Iterable, Iterator

STEP = 64 * 1024
SLOTS = threading.BoundedSemaphore(2)


class TooLarge(ValueError):
    """The body unpacks to more than the limit."""


class Unreadable(ValueError):
    """The body is not gzip, or not JSON once unpacked."""


def _pieces(blob: bytes, limit: int) -> Iterator[bytes]:
    """Yield the gzip ``blob`` unpacked, a step at a time; TooLarge as soon as it passes ``limit`` bytes."""
    decompressor = zlib.decompressobj(wbits=31)  # gzip header and trailer
    total = 0
    view = memoryview(blob)
    try:
        for start in range(0, len(view), STEP):
            data = bytes(view[start : start + STEP])
            while data or not decompressor.eof:  # (no data: output still held back after all input)
                # At most one STEP out per call, and never more than one byte past the limit.
                piece = decompressor.decompress(data, min(STEP, limit + 1 - total))
                data = decompressor.unconsumed_tail
                if not piece:
                    break
                total += len(piece)
                if total > limit:
                    raise TooLarge(f"The unpacked body is larger than {limit} bytes.")
                yield piece
            if decompressor.eof:
                break
        if not decompressor.eof:
            raise Unreadable("The body is not valid gzip data: it ends too early.")
    except zlib.error as exc:
        raise Unreadable(f"The body is not valid gzip data: {exc}") from exc


def inflate(blob: bytes, limit: int) -> bytearray:
    """Return the gzip ``blob`` unpacked; TooLarge as soon as it passes ``limit`` bytes."""
    out = bytearray()
    for piece in _pieces(blob, limit):
        out += piece
    return out


def inflate_json(blob: bytes, limit: int, *, parse_constant=None) -> object:
    """Unpack and parse a gzip JSON body within ``limit`` bytes, in one of the few ``SLOTS``."""
    with SLOTS:
        raw = inflate(blob, limit)
        try:
            return json.loads(raw, parse_constant=parse_constant) if parse_constant else json.loads(raw)
        except ValueError as exc:
            raise Unreadable(f"The body is not valid JSON: {exc}") from exc


def inflate_lines(blob: bytes, limit: int, *, line_limit: int) -> Iterator[bytes]:
    """Yield the lines of the gzip ``blob`` one at a time, unpacking as they are read.

    A file of any size is read holding one line (at most ``line_limit`` bytes) and one step of
    input: TooLarge as soon as the whole passes ``limit`` or a line passes ``line_limit``.
    """
    pending = bytearray()
    for piece in _pieces(blob, limit):
        pending += piece
        *lines, rest = pending.split(b"\n")
        yield from (bytes(line) for line in lines if line)
        pending = bytearray(rest)
        if len(pending) > line_limit:
            raise TooLarge(f"A part of the body is larger than {line_limit} bytes.")
    if pending:
        yield bytes(pending)


def deflate_lines(items: Iterable[object]) -> bytes:
    """Return the JSON lines of ``items`` gzip-compressed, compressing as they come (one in memory)."""
    compressor = zlib.compressobj(6, wbits=31)
    out = bytearray()
    for item in items:
        out += compressor.compress(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        out += compressor.compress(b"\n")
    out += compressor.flush()
    return bytes(out)
