"""A compressed body cut short (``decode_prefix``, ``encode``): the kept copy of a
streamed body that was cut at auth_keep_body is the start of a gzip (or br,
zstd, deflate) stream, which mitmproxy's decoders refuse whole. The
decompressors are mitmproxy's own dependencies, which differ by version: zstd
is ``zstandard`` up to 11.x, ``compression.zstd`` (``backports.zstd`` before
Python 3.14) from 12.0; brotli takes an output limit from 1.2 only.
"""

from __future__ import annotations

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
