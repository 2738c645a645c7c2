"""The length-prefixed JSON protocol between supervisor and workers, and its typed messages."""

from __future__ import annotations

import socket

import pytest

from procsupervisor.protocol import (
    HEADER,
    MAX_MESSAGE_BYTES,
    WORKER_MESSAGE_TYPES,
    BlockingChannel,
    FrameDecoder,
    Outcome,
    ProcessRequest,
    Progress,
    ProtocolError,
    Ready,
    Result,
    StopRequest,
    decode_supervisor_message,
    decode_worker_message,
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


@pytest.mark.parametrize(
    "message",
    [
        ProcessRequest(crash_id="a", ruleset=None, queue="normal", attempt=1),
        ProcessRequest(crash_id="a", ruleset="r", queue="reprocessing", attempt=3, poison="why"),
        StopRequest(),
    ],
)
def test_supervisor_messages_round_trip_typed(message) -> None:
    left, right = socket.socketpair()
    left.sendall(encode(message))
    assert BlockingChannel(right).receive_request() == message


@pytest.mark.parametrize(
    "message",
    [
        Ready(pid=7, version="1", cache_stats={"hits": 1}),
        Progress(crash_id="a", stage="fetch"),
        Result(crash_id="a", outcome=Outcome.NOT_FOUND, reason="gone",
               timings_ms={"total": 1.5}, cache_stats={}),
    ],
)
def test_worker_messages_round_trip_typed(message) -> None:
    [frame] = FrameDecoder(WORKER_MESSAGE_TYPES).feed(encode(message))
    assert decode_worker_message(frame) == message


def test_outcomes_are_one_enum_on_the_wire() -> None:
    frame = Result(crash_id="a", outcome=Outcome.OK).to_json()
    assert frame["outcome"] == "ok"
    assert {o.value for o in Outcome} == {"ok", "transient", "not_found", "invalid", "unavailable"}
    assert ProcessRequest("a", None, "normal", 1).to_json().keys() == {
        "type", "crash_id", "ruleset", "queue", "attempt"
    }


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ({"type": "result", "crash_id": "a", "outcome": "great"}, "unknown outcome"),
        ({"type": "ready", "pid": "seven"}, "pid must be an integer"),
        ({"type": "process", "crash_id": "a"}, "unexpected message"),
    ],
)
def test_typed_decoding_rejects_what_a_worker_may_not_send(frame: dict, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        decode_worker_message(frame)


def test_a_malformed_request_is_rejected_on_the_worker_side() -> None:
    with pytest.raises(ProtocolError, match="attempt must be an integer"):
        decode_supervisor_message({"type": "process", "crash_id": "a", "attempt": "1"})
