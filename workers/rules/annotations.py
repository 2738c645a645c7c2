"""Annotations copied as typed snake_case fields, driven by the table in annotations.json
(Socorro's CopyFromRawCrashRule reads the same facts from its processed-crash schema,
docs/processing.md §8). Annotations the table does not name stay in the raw crash only."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from procsupervisor.workers.rules.base import CrashContext, Rule

TABLE_RESOURCE = "rules/annotations.json"
# A value a converter cannot read as its type; None is a legal object member, so not that.
INVALID = object()


def _boolean(value: Any) -> Any:
    # Socorro compares the lowered text without stripping: " 1" is not a boolean.
    text = str(value).lower()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    return INVALID


def _integer(value: Any) -> Any:
    if isinstance(value, bool):
        return INVALID
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else INVALID
    # Bound the work int() does on a hostile, very long digit string.
    if not isinstance(value, str) or len(value) > 40:
        return INVALID
    try:
        return int(value)
    except ValueError:
        return INVALID


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return INVALID
    if isinstance(value, str) and len(value) > 100:
        return INVALID
    try:
        number = float(value)
    except ValueError:
        return INVALID
    # NaN and infinities have no JSON form: the stored crash could not be read back.
    return number if math.isfinite(number) else INVALID


def _string(value: Any) -> Any:
    # Trailing whitespace is never meaningful in an annotation (Android_CPU_ABI2 ends in
    # spaces); leading whitespace is kept, as Socorro keeps it.
    return value.rstrip() if isinstance(value, str) else INVALID


def _object(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return INVALID
    return value if isinstance(value, dict) else INVALID


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "boolean": _boolean,
    "integer": _integer,
    "number": _number,
    "string": _string,
    "object": _object,
}
NO_DEFAULT = object()


@dataclass(frozen=True)
class CopiedAnnotation:
    field: str  # key in the processed crash
    annotation: str  # key in the raw crash
    type: str  # a key of CONVERTERS
    default: Any = NO_DEFAULT  # set when the annotation is absent

    def convert(self, value: Any) -> Any:
        return CONVERTERS[self.type](value)


def parse_table(text: str) -> tuple[CopiedAnnotation, ...]:
    """The table's rows; a row with an unknown type or a repeated field is an error."""
    rows = json.loads(text)["copied"]
    table = tuple(CopiedAnnotation(**row) for row in rows)
    seen: set[str] = set()
    for row in table:
        if row.type not in CONVERTERS:
            raise ValueError(f"annotations table: {row.field}: unknown type {row.type!r}")
        if row.field in seen:
            raise ValueError(f"annotations table: {row.field} listed twice")
        seen.add(row.field)
    return table


@functools.cache
def copied_annotations() -> tuple[CopiedAnnotation, ...]:
    text = resources.files("procsupervisor.workers").joinpath(TABLE_RESOURCE).read_text("utf-8")
    return parse_table(text)


class CopyFromRawCrashRule(Rule):
    """Each annotation of the table that the raw crash has, converted to the table's type; a
    value that does not convert is left out with a note."""

    def __init__(self, table: tuple[CopiedAnnotation, ...] | None = None) -> None:
        self.table = copied_annotations() if table is None else table

    def action(self, ctx: CrashContext) -> None:
        for row in self.table:
            if row.annotation not in ctx.raw_crash:
                continue
            value = row.convert(ctx.raw_crash[row.annotation])
            if value is INVALID:
                ctx.add_note(f"CopyFromRawCrashRule: invalid value of {row.annotation!r}")
            else:
                ctx.processed[row.field] = value


class AnnotationDefaultsRule(Rule):
    """The table's defaults for absent annotations: a flag Firefox only sends when it is set
    (Marionette, RemoteAgent) still reads as False in searches."""

    def __init__(self, table: tuple[CopiedAnnotation, ...] | None = None) -> None:
        self.table = copied_annotations() if table is None else table

    def action(self, ctx: CrashContext) -> None:
        for row in self.table:
            if row.default is not NO_DEFAULT and row.annotation not in ctx.raw_crash:
                ctx.processed[row.field] = row.default
