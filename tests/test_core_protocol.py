"""The length-prefixed JSON protocol between supervisor and workers."""

from __future__ import annotations

import socket

import pytest

from procsupervisor.protocol import (
    HEADER,
    MAX_MESSAGE_BYTES,
    WORKER_MESSAGE_TYPES,
    BlockingChannel,
    FrameDecoder,
    ProtocolError,
    encode,
)


def test_frames_split_anywhere_decode_whole() -> None:
    data = encode({"type": "ready", "pid": 1}) + encode({"type": "result", "crash_id": "x"})
    decoder = FrameDecoder(WORKER_MESSAGE_TYPES)
    messages = []
    for i in range(len(data)):
        messages += decoder.feed(data[i : i + 1])
    assert messages == [{"type": "ready", "pid": 1}, {"type": "result", "crash_id": "x"}]


@pytest.mark.parametrize(
    "frame",
    [
        HEADER.pack(5) + b"nope!",
        HEADER.pack(2) + b"[]",
        encode({"type": "process"}),  # a supervisor message coming from a worker
        HEADER.pack(MAX_MESSAGE_BYTES + 1),
    ],
)
def test_malformed_frames_raise(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder(WORKER_MESSAGE_TYPES).feed(frame)


def test_blocking_channel_round_trip_and_eof() -> None:
    left, right = socket.socketpair()
    channel = BlockingChannel(right)
    left.sendall(encode({"type": "process", "crash_id": "a"}) + encode({"type": "stop"}))
    assert channel.receive() == {"type": "process", "crash_id": "a"}
    assert channel.receive() == {"type": "stop"}
    channel.send({"type": "ready", "pid": 7})
    assert FrameDecoder(WORKER_MESSAGE_TYPES).feed(left.recv(100)) == [{"type": "ready", "pid": 7}]
    left.close()
    assert channel.receive() is None
