"""Framing, sans-I/O: a 4-byte big-endian size, then that many bytes.

Shaped like h11: feed bytes with ``receive_data``, pull whole frames with ``next_frame``. The size is
checked against the limit as soon as the 4 size bytes arrive, before any payload is buffered, so a
peer claiming a 2 GB frame costs us 4 bytes of memory. After an error the decoder is poisoned.
"""

from __future__ import annotations

from typing import Final

from riel.errors import ProtocolError

DEFAULT_MAX_FRAME_SIZE: Final = 100 * 1024 * 1024  # Kafka's socket.request.max.bytes


class FrameDecoder:
    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._pos = 0
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None:
            raise self._error
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        self._buf += data
        self._check_size()

    def _check_size(self) -> int | None:
        if len(self._buf) - self._pos < 4:
            return None
        size = int.from_bytes(self._buf[self._pos : self._pos + 4], "big", signed=True)
        if size < 0 or size > self.max_frame_size:
            self._error = ProtocolError(
                f"frame of {size} bytes refused: the limit is {self.max_frame_size} bytes "
                "(socket.request.max.bytes)"
            )
            raise self._error
        return size

    def next_frame(self) -> memoryview | None:
        """The next complete frame's payload (without the size prefix), or None if more bytes are needed.

        The payload is a writable view owned by the caller (nothing here touches it again), so the
        broker can patch offsets into a produced batch where it lies instead of copying it out.
        """
        if self._error is not None:
            raise self._error
        size = self._check_size()
        if size is None or len(self._buf) - self._pos - 4 < size:
            return None
        start = self._pos + 4
        if self._pos == 0 and len(self._buf) == start + size:
            # The buffer holds exactly this frame (the usual case for a large produce): hand it over
            # whole, without a copy, and start a fresh buffer.
            frame = memoryview(self._buf)[start:]
            self._buf = bytearray()
            return frame
        frame = memoryview(self._buf[start : start + size])  # one copy, not shared with the buffer
        self._pos = start + size
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            # Compact now and then so a long pipelined stream does not keep consumed bytes alive.
            del self._buf[: self._pos]
            self._pos = 0
        return frame


def frame(payload: bytes | bytearray) -> bytes:
    return len(payload).to_bytes(4, "big") + payload
