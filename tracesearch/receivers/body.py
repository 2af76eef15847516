"""Reading request bodies with the size limit enforced after decompression."""

from __future__ import annotations

import zlib
from typing import IO

from tracesearch.api.http_errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

CHUNK = 256 * 1024


def _too_large(limit: int, what: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {limit} bytes {what}", field="body")


def read_raw(stream: IO[bytes], content_length: int | None, limit: int) -> bytes:
    if content_length is not None and content_length > limit:
        raise _too_large(limit, f"(Content-Length {content_length})")
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit, "")
    return data


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """Inflate gzip/deflate in bounded steps, so a small bomb never grows past ``limit`` in memory."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; use gzip or none", field="Content-Encoding"
        )
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out = bytearray()
    pending = data
    try:
        while pending:
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise _too_large(limit, "after decompression")
            pending = inflater.unconsumed_tail
        out += inflater.flush()
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {encoding}: {exc}", field="body") from exc
    if len(out) > limit:
        raise _too_large(limit, "after decompression")
    if not inflater.eof:
        raise BadRequest(f"{encoding} body is truncated", field="body")
    return bytes(out)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()
