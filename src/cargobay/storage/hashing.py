"""A SHA-256 whose running state can be saved and restored.

Chunked uploads may be continued by any worker process or replica, so the hash of what has been
received so far must outlive the request. Python's hashlib cannot export its state; OpenSSL's
``SHA256_CTX`` is a plain struct, so this drives the libcrypto hashlib already loaded through
ctypes and copies the struct out and in. Speed is OpenSSL's, and the GIL is released while hashing.

Fail-safe by design:

- Only a libcrypto with a versioned name (``libcrypto.so.3``) is ever called (an unversioned
  one aborts the process on some systems), and only once it has hashed a known vector right.
- Every saved state is tagged with a format version and the identity of the library that wrote
  it (file name, OpenSSL version, machine). :func:`restore` returns None for a state it can't
  trust (another libcrypto, another layout, no libcrypto here, the fast path turned off):
  callers then re-hash the bytes already stored, which is slower but always right.
- :func:`describe` says which path is in use; ``cargobay serve`` prints it at start-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import platform
import re
import struct
import sys

_CTX_SIZE = 112  # sizeof(SHA256_CTX): h[8], Nl, Nh, data[16], num, md_len (32-bit words)
_NUM_AND_MD_LEN = struct.Struct("=II")  # the struct's last two words, at offset 104
#: Version of the saved-state layout: magic, this version, library identity, the struct.
FORMAT_VERSION = 1
_MAGIC = b"cbh"
_IDENTITY_SIZE = 8
STATE_SIZE = len(_MAGIC) + 1 + _IDENTITY_SIZE + _CTX_SIZE

#: A libcrypto file name with a version in it: ``libcrypto.so.3``, ``libcrypto.3.dylib``.
_VERSIONED = re.compile(r"libcrypto(?:-[0-9]+)?\.(?:so\.[0-9][0-9.]*|[0-9][0-9.]*\.dylib)")


def _loaded_libcrypto() -> str | None:
    """The versioned libcrypto this process already has (the one hashlib uses), else None."""
    import _hashlib  # noqa: F401  (loads OpenSSL's libcrypto)

    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and _VERSIONED.fullmatch(os.path.basename(fields[5].strip())):
                    return fields[5].strip()
    except OSError:
        pass
    name = ctypes.util.find_library("crypto")
    return name if name and _VERSIONED.fullmatch(os.path.basename(name)) else None


def _openssl_version(lib: ctypes.CDLL) -> str:
    try:
        version = lib.OpenSSL_version
    except AttributeError:
        return "unknown"
    version.restype = ctypes.c_char_p
    version.argtypes = [ctypes.c_int]
    raw = version(0)
    return raw.decode("ascii", "replace") if isinstance(raw, bytes) else "unknown"


def _load() -> tuple[ctypes.CDLL | None, str]:
    """The library and how it was found, or None and why not."""
    path = _loaded_libcrypto()
    if path is None:
        return None, "no versioned libcrypto in this process"
    try:
        lib = ctypes.CDLL(path)
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    except (OSError, AttributeError) as exc:
        return None, f"{os.path.basename(path)} can't be used ({type(exc).__name__})"
    probe = ctypes.create_string_buffer(_CTX_SIZE)
    out = ctypes.create_string_buffer(32)
    lib.SHA256_Init(probe)
    lib.SHA256_Update(probe, b"abc", 3)
    lib.SHA256_Final(out, probe)
    if out.raw != hashlib.sha256(b"abc").digest():
        return None, f"{os.path.basename(path)} hashed a test vector wrong"
    return lib, f"{os.path.basename(path)} ({_openssl_version(lib)})"


_LOADED, _FOUND = _load()
_LIB, _HOW = _LOADED, _FOUND
AVAILABLE = _LIB is not None
#: Who wrote a state: only a state with this tag is restored.
_IDENTITY = hashlib.sha256(
    f"{_FOUND}|{platform.machine()}|{sys.byteorder}|{_CTX_SIZE}".encode()
).digest()[:_IDENTITY_SIZE]
_HEADER = _MAGIC + bytes([FORMAT_VERSION]) + _IDENTITY


def configure(*, enabled: bool) -> None:
    """Use the resumable hash where the library allows it (``enabled``), or never (the
    ``resumable_hash`` setting): then every upload continued by another request is re-hashed
    from storage. The application calls this once at start-up."""
    global _LIB, _HOW, AVAILABLE
    _LIB = _LOADED if enabled else None
    _HOW = _FOUND if enabled else "turned off (resumable_hash = false)"
    AVAILABLE = _LIB is not None


def describe() -> str:
    """Which hashing path uploads use, for the start-up log."""
    if AVAILABLE:
        return f"resumable SHA-256 through {_HOW}, saved-state format {FORMAT_VERSION}"
    return (
        f"resumable SHA-256 unavailable: {_HOW}; uploads continued by another request are "
        "re-hashed from storage"
    )


class ResumableSHA256:
    """``update`` bytes, ``state()`` to save, :func:`restore` (or ``ResumableSHA256(state)``)
    to continue."""

    __slots__ = ("_ctx",)

    def __init__(self, state: bytes | None = None) -> None:
        if _LIB is None:
            raise RuntimeError(f"resumable SHA-256 unavailable: {_HOW}")
        if state is None:
            self._ctx = ctypes.create_string_buffer(_CTX_SIZE)
            _LIB.SHA256_Init(self._ctx)
            return
        if not restorable(state):
            raise ValueError("not a SHA-256 state saved by this library")
        self._ctx = ctypes.create_string_buffer(state[len(_HEADER) :], _CTX_SIZE)

    def update(self, data: bytes) -> None:
        assert _LIB is not None
        _LIB.SHA256_Update(self._ctx, data, len(data))

    def state(self) -> bytes:
        """The running state, tagged (see the module docstring)."""
        return _HEADER + self._ctx.raw

    def hexdigest(self) -> str:
        """The digest of everything so far; the running state is left untouched."""
        assert _LIB is not None
        ctx = ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE)
        out = ctypes.create_string_buffer(32)
        _LIB.SHA256_Final(out, ctx)
        return out.raw.hex()


def restorable(state: bytes) -> bool:
    """Whether ``state`` was saved by this format and this very library, and looks sane."""
    if _LIB is None or len(state) != STATE_SIZE or not state.startswith(_HEADER):
        return False
    num, md_len = _NUM_AND_MD_LEN.unpack_from(state, len(_HEADER) + _CTX_SIZE - 8)
    return bool(num < 64 and md_len == 32)


def restore(state: bytes | None) -> ResumableSHA256 | None:
    """The hash continued from ``state``, or None when it can't be trusted here (the caller
    re-hashes the stored bytes instead)."""
    if state is None or not restorable(state):
        return None
    return ResumableSHA256(state)


def new() -> ResumableSHA256 | None:
    """A fresh resumable hash, or None where there is none (the caller hashes otherwise)."""
    return ResumableSHA256() if AVAILABLE else None
