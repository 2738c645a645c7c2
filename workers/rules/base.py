"""What every processing rule is given and how it is shaped (docs/processing.md §7.5).

A rule reads the raw crash, the dumps and the processed crash built so far, and writes its own
fields into the processed crash. Rules never raise on purpose: the pipeline still catches any
exception and turns it into a processor note, so one broken rule cannot lose a crash.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class CrashContext:
    """One crash while it goes through a ruleset."""

    crash_id: str
    raw_crash: dict[str, Any]
    dumps: Mapping[str, bytes]
    processed: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def add_note(self, note: str) -> None:
        self.notes.append(note)


class Rule(abc.ABC):
    """`action` runs when `predicate` is true; both see the whole crash context."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def predicate(self, ctx: CrashContext) -> bool:
        return True

    @abc.abstractmethod
    def action(self, ctx: CrashContext) -> None: ...

    def __repr__(self) -> str:
        return f"<{self.name}>"
