"""A SHA-256 whose running state can be saved and restored.

Chunked uploads may be continued by any worker process or replica, so the hash of what has been
received so far must outlive the request. Python's hashlib cannot export its state; OpenSSL's
``SHA256_CTX`` is a plain struct, so this drives libcrypto (already loaded by hashlib) through
ctypes and copies the struct out and in. Speed is OpenSSL's, and the GIL is released while hashing.
Where libcrypto is not found, :data:`AVAILABLE` is False and callers re-hash from storage.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib

_CTX_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len (32-bit words)


def _load() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    probe = ctypes.create_string_buffer(_CTX_SIZE)
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Init(probe)
    lib.SHA256_Update(probe, b"abc", 3)
    lib.SHA256_Final(out, probe)
    return lib if out.raw == hashlib.sha256(b"abc").digest() else None


_LIB = _load()
AVAILABLE = _LIB is not None
STATE_SIZE = _CTX_SIZE


class ResumableSHA256:
    """``update`` bytes, ``state()`` to save, ``ResumableSHA256(state)`` to continue."""

    __slots__ = ("_ctx",)

    def __init__(self, state: bytes | None = None) -> None:
        if _LIB is None:
            raise RuntimeError("libcrypto is not available")
        if state is None:
            self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
            _LIB.SHA256_Init(self._ctx)
        else:
            if len(state) != _CTX_SIZE:
                raise ValueError("not a saved SHA-256 state")
            self._ctx = ctypes.create_string_buffer(state, _CTX_SIZE)

    def update(self, data: bytes) -> None:
        assert _LIB is not None
        _LIB.SHA256_Update(self._ctx, data, len(data))

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        """The digest of everything so far; the running state is left untouched."""
        assert _LIB is not None
        ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        out = ctypes.create_string_buffer(32)
        _LIB.SHA256_Final(out, ctx)
        return out.raw.hex()
