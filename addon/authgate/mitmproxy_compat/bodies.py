"""Streamed bodies.

* A compressed body cut short (``decode_prefix``, ``encode``): the kept copy of
  a streamed body that was cut at auth_keep_body is the start of a gzip (or br,
  zstd, deflate) stream, which mitmproxy's decoders refuse whole. The
  decompressors are mitmproxy's own dependencies, which differ by version: zstd
  is ``zstandard`` up to 11.x, ``compression.zstd`` (``backports.zstd`` before
  Python 3.14) from 12.0; brotli takes an output limit from 1.2 only.
* mitmproxy's two INFO lines for each streamed flow ("Streaming request to
  HOST.", "Streaming response from HOST.", from its HTTP layer through
  ``mitmproxy.proxy.server``'s logger, 11.0 to 12.3 alike) are dropped
  (``quiet_stream_lines``): with every body streamed they would double what
  mitmdump prints per request, and each record goes to every addon as an
  ``add_log`` event (about 0.7M CPU instructions each).
"""

from __future__ import annotations

import logging
import zlib
from io import BytesIO

from mitmproxy.net import encoding as _encoding

try:
    import brotli
except ImportError:  # pragma: no cover - a dependency of every mitmproxy 11-12
    brotli = None
try:
    from compression import zstd as _zstd  # Python 3.14+
except ImportError:
    try:
        from backports import zstd as _zstd  # mitmproxy 12 before Python 3.14
    except ImportError:
        _zstd = None
try:
    import zstandard  # mitmproxy up to 11.x
except ImportError:
    zstandard = None

ENCODINGS = ("gzip", "deflate", "br", "zstd")  # the ones decode_prefix reads
_STEP = 4096  # bytes of brotli input at a time, so that its output stays near the limit


def decode_prefix(raw: bytes, encoding: str, limit: int) -> bytes | None:
    """The start of a body in `encoding` cut anywhere, decoded as far as its
    bytes go and to at most `limit` bytes; None when this encoding is not one
    of ENCODINGS or the bytes are not in it."""
    try:
        if encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, limit)
        if encoding == "deflate":  # with the zlib header, or without (as mitmproxy's decoder allows)
            try:
                return zlib.decompressobj().decompress(raw, limit)
            except zlib.error:
                return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, limit)
        if encoding == "br" and brotli is not None:
            d, out = brotli.Decompressor(), bytearray()
            for i in range(0, len(raw), _STEP):
                out += d.process(raw[i:i + _STEP])
                if len(out) >= limit:
                    break
            return bytes(out[:limit])
        if encoding == "zstd" and _zstd is not None:
            return _zstd.ZstdDecompressor().decompress(raw, max_length=limit)
        if encoding == "zstd" and zstandard is not None:
            reader = zstandard.ZstdDecompressor().stream_reader(BytesIO(raw), read_across_frames=True)
            return reader.read(limit)
    except Exception:  # (zlib.error, brotli.error, ZstdError: each library its own)
        return None
    return None


def encode(data: bytes, encoding: str) -> bytes:
    """`data` in `encoding`, as mitmproxy encodes a body set through ``.content``."""
    return _encoding.encode(data, encoding)


# ------------------------------------------------------------ mitmproxy's lines per streamed flow

_STREAM_LINES = ("Streaming request to ", "Streaming response from ")
_SERVER_LOGGER = "mitmproxy.proxy.server"


class _QuietStreamLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (msg.__class__ is str and msg.startswith(_STREAM_LINES))


_quiet = _QuietStreamLines()


def _log_unless_streaming(log):
    def log_(level, msg, *args, **kwargs):
        if msg.__class__ is str and msg.startswith(_STREAM_LINES):
            return  # before a record is made: a filtered record costs ~10 µs (the caller's frame, the record)
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the record names mitmproxy's caller, not this
        log(level, msg, *args, **kwargs)
    log_.original = log
    return log_


def quiet_stream_lines(on: bool = True) -> None:
    """Drop (on) or let through again (off) mitmproxy's lines for each streamed flow.
    ConnectionHandler.log calls its module logger's ``log``: that one method of that one
    logger drops them before a record is made; the filter catches them whatever
    method a release uses."""
    logger = logging.getLogger(_SERVER_LOGGER)
    wrapped = logger.__dict__.get("log")
    if on:
        logger.addFilter(_quiet)  # (once: a filter already there is not added again)
        if wrapped is None:
            logger.log = _log_unless_streaming(logger.log)
    else:
        logger.removeFilter(_quiet)
        if wrapped is not None and hasattr(wrapped, "original"):
            del logger.log
