"""Free space, and out-of-space errors told apart from other I/O errors.

A full disk is not an outage: it is reported as :class:`~cargobay.errors.InsufficientStorage`
(507, no ``Retry-After``) with one log line naming the store and what is left on it.
"""

from __future__ import annotations

import errno
import os

from cargobay.errors import InsufficientStorage

#: errno values that mean "no room": the disk, or the user's quota, is full.
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes an unprivileged writer can still use on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def total_bytes(path: str | os.PathLike[str]) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def is_out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in OUT_OF_SPACE


def out_of_space(store: str, path: str | os.PathLike[str], exc: OSError) -> InsufficientStorage:
    """The domain error for ``exc`` (ENOSPC/EDQUOT writing under ``path``). Whoever answers
    the request logs it, once."""
    try:
        free = f"{free_bytes(path)} bytes free"
    except OSError:
        free = "free space unknown"
    error = InsufficientStorage(
        "the registry is out of storage",
        where=f"{store} at {path} is out of space ({free}): {exc.strerror or exc}",
    )
    error.__cause__ = exc
    return error


class FreeSpaceCheck:
    """Readiness: enough free space under ``path`` to accept pushes. The floor is the smaller
    of ``min_bytes`` and ``min_percent`` of the filesystem's size (either 0: no floor)."""

    def __init__(self, path: str | os.PathLike[str], min_bytes: int, min_percent: float) -> None:
        self.path = path
        self.min_bytes = min_bytes
        self.min_percent = min_percent

    def floor(self) -> int:
        return int(min(self.min_bytes, total_bytes(self.path) * self.min_percent / 100))

    async def __call__(self) -> None:
        """Raise InsufficientStorage when free space is under the floor."""
        floor = self.floor()
        free = free_bytes(self.path)
        if free < floor:
            raise InsufficientStorage(
                f"{free} bytes free in {self.path}, under the minimum of {floor}"
            )
