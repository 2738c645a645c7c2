"""Dead letters one by one on RabbitMQ (docs/operations.md, "Dead letters").

A queue has no random access, so every operation browses the dead-letter queue on a channel
of its own: `basic_get` without ack, look at the message, and either ack it (requeue, purge)
or leave it unacked. Closing the browsing channel hands every message left unacked back to the
broker, which puts it back in its place, so a browse changes nothing it was not asked to.
The supervisor never consumes the dead-letter queue, so it does not compete with a browse.

A dead letter's id is the `x-procsupervisor-dead-id` header written when it was dead-lettered.
A message the broker dead-lettered by itself (a quorum queue's delivery limit) has no such
header; its id is a digest of its body and headers, which a browse does not change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from procsupervisor.queues.base import DeadLetter

log = logging.getLogger(__name__)

DEAD_ID_HEADER = "x-procsupervisor-dead-id"

# What a browse does with the message it is looking at.
KEEP, TAKE, STOP = "keep", "take", "stop"


def new_dead_id() -> str:
    """Sortable by time, unique enough to name one letter: `<utc time>-<random>`."""
    import secrets

    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def browse(
    connection: Any,
    queue_name: str,
    to_letter: Callable[[Mapping[str, Any], bytes], DeadLetter],
    visit: Callable[[DeadLetter], str],
    take: Callable[[DeadLetter], None] | None = None,
) -> None:
    """Show every dead letter to `visit`, oldest first, until it answers STOP or the queue is
    exhausted. For TAKE, `take(letter)` runs (e.g. republish it, confirmed) and then the
    message is acked; if `take` raises, the message stays and the error propagates."""
    channel = connection.channel()
    try:
        # Messages left unacked on this channel are not delivered to it again, so the loop
        # ends when every message has been seen once.
        while True:
            method, properties, body = channel.basic_get(queue_name, auto_ack=False)
            if method is None:
                return
            letter = to_letter(dict(properties.headers or {}), body)
            action = visit(letter)
            if action == TAKE:
                if take is not None:
                    take(letter)
                channel.basic_ack(delivery_tag=method.delivery_tag)
            elif action == STOP:
                return
    finally:
        if channel.is_open:
            channel.close()  # everything still unacked goes back to the queue, in place


def collect(limit: int | None) -> tuple[list[DeadLetter], Callable[[DeadLetter], str]]:
    """A visitor that gathers up to `limit` letters."""
    letters: list[DeadLetter] = []

    def visit(letter: DeadLetter) -> str:
        letters.append(letter)
        return STOP if limit is not None and len(letters) >= limit else KEEP

    return letters, visit


def select(
    letter_ids: Collection[str], action: str
) -> tuple[dict[str, DeadLetter], Callable[[DeadLetter], str]]:
    """A visitor that applies `action` to the letters with these ids and stops once every one
    of them was found."""
    wanted = set(letter_ids)
    found: dict[str, DeadLetter] = {}

    def visit(letter: DeadLetter) -> str:
        if len(found) == len(wanted):
            return STOP
        if letter.letter_id not in wanted or letter.letter_id in found:
            return KEEP
        found[letter.letter_id] = letter
        return action

    return found, visit


def digest_id(headers: Mapping[str, Any], body: bytes) -> str:
    """The id of a letter without our id header: stable across browses."""
    text = json.dumps(_plain(headers), sort_keys=True, default=str)
    return "h" + hashlib.sha256(body + b"\0" + text.encode()).hexdigest()[:16]


def death_time(headers: Mapping[str, Any]) -> str:
    """When the broker dead-lettered it, from its own x-death record, as ISO text."""
    for death in headers.get("x-death") or []:
        when = death.get("time") if isinstance(death, Mapping) else None
        if isinstance(when, dt.datetime):
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            return when.isoformat(timespec="seconds")
    return ""


def death_reason(headers: Mapping[str, Any]) -> str:
    for death in headers.get("x-death") or []:
        if isinstance(death, Mapping):
            reason = _plain(death.get("reason", ""))
            queue = _plain(death.get("queue", ""))
            return f"dead-lettered by the broker ({reason}) from {queue}"
    return ""


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
