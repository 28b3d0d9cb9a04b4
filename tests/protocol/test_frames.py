"""FrameDecoder hands out writable frames, without a copy when the buffer holds exactly one frame."""

from __future__ import annotations

from riel.protocol.frames import FrameDecoder, frame


def test_whole_single_frame_is_handed_over_writable() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(frame(b"abcdef"))
    out = decoder.next_frame()
    assert out is not None and bytes(out) == b"abcdef" and not out.readonly
    out[0:1] = b"z"  # the broker patches produced batches in place
    assert decoder.next_frame() is None
    decoder.receive_data(frame(b"next"))
    second = decoder.next_frame()
    assert second is not None and bytes(second) == b"next"
    assert bytes(out) == b"zbcdef"  # a later frame never overwrites an earlier one


def test_pipelined_frames_are_independent_copies() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(frame(b"one") + frame(b"two") + frame(b"thr")[:5])
    first, second = decoder.next_frame(), decoder.next_frame()
    assert first is not None and second is not None and decoder.next_frame() is None
    first[0:1] = b"X"
    assert (bytes(first), bytes(second)) == (b"Xne", b"two") and not second.readonly
    decoder.receive_data(frame(b"thr")[5:])
    third = decoder.next_frame()
    assert third is not None and bytes(third) == b"thr"
