"""One append to a filesystem upload: received bytes written in batches, counted only once
stored.

Bytes are gathered into batches of :data:`WRITE_BATCH`; in a batch, small pieces are joined
into one write and big ones written as received (no copy). A write may store
fewer bytes than asked (a disk filling up): only what was stored advances the offset and the
hash, and the rest is written again; a write that fails raises :class:`WriteFailed` with the
offset still at the last byte stored. A body that stalls has what arrived written within
:data:`IDLE_FLUSH` seconds, so a server stopped (or killed) while a client holds a request open
keeps every byte received: the session resumes from exactly there.
"""

from __future__ import annotations

import errno
import time
from collections.abc import AsyncIterable, Callable, Iterator

import anyio

from cargobay.errors import TooLarge
from cargobay.storage import hashing

WRITE_BATCH = 1024 * 1024
#: Seconds received bytes may wait in memory for more before they are written anyway.
IDLE_FLUSH = 0.5

#: Received pieces at least this big are written as they are; smaller ones are joined first.
WRITE_AS_IS = 64 * 1024

PWrite = Callable[[int, memoryview, int], int]


def _batches(pending: list[bytes]) -> Iterator[bytes]:
    """``pending`` as few writes as possible without copying big pieces: runs of small ones are
    joined, a big one is written on its own."""
    run: list[bytes] = []
    for data in pending:
        if len(data) < WRITE_AS_IS:
            run.append(data)
            continue
        if run:
            yield run[0] if len(run) == 1 else b"".join(run)
            run = []
        yield data
    if run:
        yield run[0] if len(run) == 1 else b"".join(run)


class WriteFailed(Exception):
    """Writing upload bytes failed (told apart from errors of the incoming stream)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class FileAppend:
    """Write a stream at ``start`` of ``fd`` with ``pwrite``; ``pos`` is always the end of what
    is stored, ``hasher`` (if any) has hashed exactly the bytes before it."""

    def __init__(
        self, fd: int, start: int, hasher: hashing.ResumableSHA256 | None, pwrite: PWrite
    ) -> None:
        self.fd = fd
        self.pos = start
        self.hasher = hasher
        self.pwrite = pwrite
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.received_at = time.monotonic()
        self.failure: WriteFailed | None = None  # from a write while the stream was idle

    def flush(self) -> None:
        """Write what is pending. Raises WriteFailed (``pos`` is then what was stored)."""
        if not self.pending:
            return
        pending = self.pending
        self.pending = []
        self.pending_size = 0
        for data in _batches(pending):
            self._write(data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        while done < len(data):
            try:
                written = self.pwrite(self.fd, view[done:], self.pos)
            except OSError as exc:
                raise WriteFailed(exc) from exc
            if written <= 0:
                raise WriteFailed(OSError(errno.EIO, "the write stored nothing"))
            if self.hasher is not None:
                whole = done == 0 and written == len(data)
                self.hasher.update(data if whole else data[done : done + written])
            self.pos += written
            done += written

    def drop_pending(self) -> None:
        self.pending.clear()
        self.pending_size = 0

    async def receive(self, chunks: AsyncIterable[bytes], max_size: int) -> None:
        """Take in and store ``chunks``. Raises TooLarge (past ``max_size``, pending bytes
        dropped), WriteFailed, and whatever the stream raises (pending bytes kept: call
        :meth:`flush`)."""
        error: BaseException | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._flush_when_idle)
            try:
                async for chunk in chunks:
                    if self.failure is not None:
                        raise self.failure
                    if self.pos + self.pending_size + len(chunk) > max_size:
                        self.drop_pending()
                        raise TooLarge(limit=max_size)
                    self.pending.append(chunk)
                    self.pending_size += len(chunk)
                    self.received_at = time.monotonic()
                    if self.pending_size >= WRITE_BATCH:
                        self.flush()
                if self.failure is not None:
                    raise self.failure
                self.flush()
            except Exception as exc:  # raised below the task group, not as an exception group
                error = exc
            tasks.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _flush_when_idle(self) -> None:
        while self.failure is None:
            await anyio.sleep(IDLE_FLUSH)
            if self.pending and time.monotonic() - self.received_at >= IDLE_FLUSH:
                try:
                    self.flush()
                except WriteFailed as exc:
                    self.failure = exc
