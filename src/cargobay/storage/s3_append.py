"""One append to an S3 upload session: bytes in, parts and tail segments out, one new state.

Received bytes are gathered until the tail (what earlier requests left below S3's 5 MiB minimum
part size) plus the new bytes make :data:`PART_SIZE`; that becomes the next part of the multipart
upload, with :data:`IN_FLIGHT` parts uploading while more bytes arrive, so memory stays at a few
parts whatever the blob size. At the end, what is left becomes a part if it reaches the minimum,
else a new tail segment. The SHA-256 state moves along with the bytes, in order.

Nothing is visible to other requests until :meth:`AppendCall.save` replaces the state object
(``If-Match`` on the ETag read at the start), or a checkpoint does on a long request (whole parts
only; a failing request puts the state from before it back). A request that loses that race, or
fails, removes the segments it wrote and leaves only parts the state does not name: the next
append uploads over them, and the commit leaves any still there out of the blob.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator

import anyio
import anyio.abc
from botocore.exceptions import ClientError

from cargobay.errors import BlobUploadInvalid, SizeInvalid, TooLarge
from cargobay.storage import hashing
from cargobay.storage.s3_client import S3Calls, is_missing, is_precondition_failed, unquote_etag
from cargobay.storage.s3_commit import CONCURRENT_WRITER, CONTENT_TYPE, read_segments
from cargobay.storage.s3_state import MAX_PARTS, MIN_PART, Keys, UploadState

#: Size of the parts a stream is cut into (the last one of a request may be smaller), unless a
#: request's declared length needs larger ones to fit in S3's 10,000 parts. With IN_FLIGHT parts
#: uploading while the next one is received, a request holds about 40 MB at most. (Measured on
#: Ceph RGW: 8 MiB x 3 in flight is as fast as 16 MiB x 2 with two thirds of the memory.)
PART_SIZE = 8 * 1024 * 1024
#: Parts uploading at once per request, while the next one is being received.
IN_FLIGHT = 3
#: Most tail segments kept before they are merged into one.
MAX_SEGMENTS = 32
#: A long request saves its progress (whole parts uploaded so far) this often, in seconds: the
#: session stays fresh for the expiry sweep, and survives this replica dying mid-stream.
CHECKPOINT_INTERVAL = 30.0


class AppendCall:
    """Append one request's bytes to session ``upload_id`` whose state (read with ``etag``) is
    ``old``. Use :meth:`receive`, then :meth:`save` (or :meth:`undo`)."""

    def __init__(
        self, s3: S3Calls, keys: Keys, upload_id: str, old: UploadState, etag: str
    ) -> None:
        self.s3 = s3
        self.keys = keys
        self.upload_id = upload_id
        self.old = old
        self.etag = etag
        # No hash (None) when the saved state can't be restored here: commit re-hashes.
        self.hasher = hashing.restore(old.hash) if old.size else hashing.new()
        self.multipart = old.multipart
        self.created_multipart = False
        self.next_part = len(old.parts) + 1
        self.new_parts: dict[int, tuple[str, int]] = {}
        self.hash_after: dict[int, bytes] = {}  # SHA-256 state at the end of each new part
        self.saved_through = len(old.parts)  # the last part a saved checkpoint holds
        self.checkpoint_at = time.monotonic() + CHECKPOINT_INTERVAL
        self.carry = list(old.segments)  # the tail not yet folded into a part
        self.carried = old.tail_size
        self.consumed: list[str] = []  # earlier segments folded into a part by this request
        self.written: list[str] = []  # segments this request wrote
        self.buffer = bytearray()  # received, not yet stored; becomes the next part's body
        self.received = 0
        self.part_size = PART_SIZE
        self.failure: Exception | None = None  # from a part upload
        self.slots = anyio.Semaphore(IN_FLIGHT)

    async def receive(
        self, chunks: AsyncIterable[bytes], *, max_size: int, length: int | None
    ) -> Exception | None:
        """Take in ``chunks``. Returns the exception the stream raised (the client went away:
        what arrived before is kept), None when it ended. Raises TooLarge, SizeInvalid and S3
        errors; then nothing is kept and :meth:`undo` has run."""
        if length is not None:  # room for what is left of S3's parts at this size
            left = MAX_PARTS - len(self.old.parts) - 1
            self.part_size = max(PART_SIZE, -(-length // max(left, 1)))
        went_away: Exception | None = None
        error: Exception | None = None
        async with anyio.create_task_group() as tasks:
            try:
                went_away = await self._take(tasks, aiter(chunks), max_size)
                if went_away is None and length is not None and self.received != length:
                    raise SizeInvalid(
                        f"received {self.received} bytes, expected {length}",
                        {"received": self.received, "expected": length},
                    )
                await self._finish(tasks)
            except Exception as e:  # raised below the task group, not as an exception group
                error = e
        error = error or self.failure
        if error is not None:
            with anyio.CancelScope(shield=True):
                await self.undo()
            raise error
        return went_away

    async def _take(
        self, tasks: anyio.abc.TaskGroup, chunks: AsyncIterator[bytes], max_size: int
    ) -> Exception | None:
        while True:
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return None
            except Exception as e:
                return e
            if self.old.size + self.received + len(chunk) > max_size:
                raise TooLarge(limit=max_size)
            while chunk:
                # Cut parts at exactly the part size; the hash follows the bytes in order (inline:
                # OpenSSL releases the GIL, and a thread hop per chunk would cost more).
                room = self.part_size - self.carried - len(self.buffer)
                piece, chunk = (chunk, b"") if len(chunk) <= room else (chunk[:room], chunk[room:])
                self.buffer += piece
                self.received += len(piece)
                if self.hasher is not None:
                    self.hasher.update(piece)
                if len(piece) == room:
                    await self._flush_part(tasks)
            if time.monotonic() >= self.checkpoint_at:
                await self._checkpoint()
            if self.failure is not None:
                raise self.failure

    def _take_buffer(self) -> bytearray:
        data, self.buffer = self.buffer, bytearray()
        return data

    async def _take_carry(self) -> bytes:
        """The tail segments' bytes; they will be removed once the new state is saved."""
        data = await read_segments(self.s3, self.keys, self.upload_id, self.carry)
        self.consumed.extend(name for name, _ in self.carry)
        self.carry.clear()
        self.carried = 0
        return data

    async def _flush_part(self, tasks: anyio.abc.TaskGroup) -> None:
        new = self._take_buffer()
        data = (await self._take_carry() + new) if self.carry else new
        if self.multipart is None:
            response = await self.s3.run(
                self.s3.client.create_multipart_upload,
                Bucket=self.s3.bucket,
                Key=self.keys.data(self.upload_id),
                ContentType=CONTENT_TYPE,
            )
            self.multipart = response["UploadId"]
            self.created_multipart = True
        number = self.next_part
        if number > MAX_PARTS:
            raise TooLarge("the upload has too many parts", limit=self.old.size + self.received)
        self.next_part += 1
        if self.hasher is not None:
            self.hash_after[number] = self.hasher.state()
        await self.slots.acquire()
        tasks.start_soon(self._upload_part, number, data)

    async def _upload_part(self, number: int, data: bytes | bytearray) -> None:
        try:
            response = await self.s3.run(
                self.s3.bulk.upload_part,
                Bucket=self.s3.bucket,
                Key=self.keys.data(self.upload_id),
                UploadId=self.multipart or "",
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
            )
            self.new_parts[number] = (response["ETag"], len(data))
        except Exception as e:
            self.failure = self.failure or e
        finally:
            self.slots.release()

    async def _finish(self, tasks: anyio.abc.TaskGroup) -> None:
        """Store what is left: a last part if it reaches S3's minimum, else a tail segment."""
        if not self.buffer:
            return
        if self.carried + len(self.buffer) >= MIN_PART:
            await self._flush_part(tasks)
            return
        data: bytes | bytearray = self._take_buffer()
        if len(self.carry) >= MAX_SEGMENTS:
            data = await self._take_carry() + data
        name = uuid.uuid4().hex
        self.written.append(name)
        await self.s3.run(
            self.s3.bulk.put_object,
            Bucket=self.s3.bucket,
            Key=self.keys.segment(self.upload_id, name),
            Body=data,
            ContentLength=len(data),
            ContentType=CONTENT_TYPE,
        )
        self.carry.append((name, len(data)))
        self.carried += len(data)

    def new_state(self) -> UploadState:
        parts = [self.new_parts[n] for n in range(len(self.old.parts) + 1, self.next_part)]
        return UploadState(
            size=self.old.size + self.received,
            parts=[*self.old.parts, *parts],
            segments=list(self.carry),
            hash=None if self.hasher is None else self.hasher.state(),
            multipart=self.multipart,
        )

    async def _checkpoint(self) -> None:
        """Save the whole parts uploaded so far (not the bytes still in flight or buffered)."""
        first = len(self.old.parts) + 1
        last = self.saved_through
        while last + 1 in self.new_parts:
            last += 1
        if last == self.saved_through:
            return  # nothing new: check again at the next chunk
        self.checkpoint_at = time.monotonic() + CHECKPOINT_INTERVAL
        parts = [*self.old.parts, *(self.new_parts[n] for n in range(first, last + 1))]
        state = UploadState(
            size=sum(size for _, size in parts),
            parts=parts,
            hash=self.hash_after.get(last),
            multipart=self.multipart,
        )
        await self._put_state(state)
        self.saved_through = last

    async def _put_state(self, state: UploadState) -> None:
        """Replace the state object if it is still the one this request read or wrote last.
        Raises BlobUploadInvalid if another request replaced it."""
        try:
            response = await self.s3.run(
                self.s3.client.put_object,
                Bucket=self.s3.bucket,
                Key=self.keys.state(self.upload_id),
                Body=state.encode(),
                IfMatch=unquote_etag(self.etag),
                ContentType="application/json",
            )
        except ClientError as e:
            if is_precondition_failed(e) or is_missing(e):
                raise BlobUploadInvalid(CONCURRENT_WRITER) from None
            raise
        self.etag = response["ETag"]

    async def save(self) -> int:
        """Make this request's bytes part of the session; returns the new size. Raises
        BlobUploadInvalid (and undoes) if another request changed the session meanwhile."""
        if self.received == 0:
            return self.old.size
        state = self.new_state()
        try:
            await self._put_state(state)
        except BlobUploadInvalid:
            with anyio.CancelScope(shield=True):
                await self.undo()
            raise
        if self.consumed:
            await self.s3.delete_keys(
                [self.keys.segment(self.upload_id, name) for name in self.consumed]
            )
        return state.size

    async def undo(self) -> None:
        """Put back the state from before this request (if it saved a checkpoint) and remove
        what only this request referenced."""
        shared = False  # another request continued from a checkpoint of this one
        if self.saved_through > len(self.old.parts):
            try:
                await self._put_state(self.old)
            except BlobUploadInvalid:
                shared = True
        if self.written:  # never in a checkpoint
            await self.s3.delete_keys(
                [self.keys.segment(self.upload_id, name) for name in self.written]
            )
        if self.created_multipart and self.multipart is not None and not shared:
            try:
                await self.s3.run(
                    self.s3.client.abort_multipart_upload,
                    Bucket=self.s3.bucket,
                    Key=self.keys.data(self.upload_id),
                    UploadId=self.multipart,
                )
            except ClientError as e:
                if not is_missing(e):
                    raise
