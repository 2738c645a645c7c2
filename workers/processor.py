"""The crash processor a worker calls: rulesets over one crash, and poison-crash records.

`Processor.process` never raises for a rule error (a failing rule becomes a processor note);
every processed crash it returns validates against schema/processed_crash.schema.json.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import jsonschema

from procsupervisor import crashid
from procsupervisor.metrics import Metrics
from procsupervisor.workers.pipeline import Pipeline
from procsupervisor.workers.processed_schema import validator
from procsupervisor.workers.rules import beta_version, stackwalk
from procsupervisor.workers.rules.rulesets import (
    POISON,
    RULESETS,
    StartsFrom,
    build_poison_rules,
    build_rulesets,
    selectable_rulesets,
)
from procsupervisor.workers.stackwalker.model import SymbolProvider

MAX_REASON = 500
KNOWN_OPTIONS = frozenset(
    {
        "stackwalk_max_frames",
        "stackwalk_timeout_s",
        "stackwalk_max_total_frames",
        "stackwalk_max_json_mb",
        "stackwalk_max_rss_mb",
        "hostname",
        "beta_version_api",
        "beta_version_file",
    }
)

logger = logging.getLogger(__name__)
N = TypeVar("N", int, float)


def validate_processed_crash(processed: dict[str, Any]) -> None:
    """Raises jsonschema.ValidationError (the most relevant error) if `processed` is invalid."""
    error = jsonschema.exceptions.best_match(validator().iter_errors(processed))
    if error is not None:
        raise error


def _positive_number(options: Mapping[str, str], key: str, convert: Callable[[str], N]) -> N:
    """The option's value (already known to be set) as a number > 0, or a ValueError naming it."""
    text = options[key]
    try:
        value = convert(text)
    except ValueError:
        kind = "an integer" if convert is int else "a number"
        raise ValueError(f"processor option {key!r}: not {kind}: {text!r}") from None
    if value <= 0:
        raise ValueError(f"processor option {key!r}: must be > 0, got {value}")
    return value


def _positive_int(options: Mapping[str, str], key: str, default: int) -> int:
    return _positive_number(options, key, int) if options.get(key) else default


def _timeout(options: Mapping[str, str], key: str, default: float) -> float | None:
    """Seconds > 0, or None for the text `none` (no limit)."""
    text = options.get(key)
    if not text:
        return default
    if text.strip().lower() == "none":
        return None
    return _positive_number(options, key, float)


def _stackwalk_bounds(options: Mapping[str, str]) -> dict[str, int]:
    """The per-dump bounds given as options, as stackwalker keywords (stackwalker/limits.py):
    `stackwalk_max_total_frames` (frames of all threads), `stackwalk_max_json_mb` (json_dump
    size) and `stackwalk_max_rss_mb` (the worker's memory, which the worker sets from
    `[supervisor] worker_max_rss_mb`)."""
    bounds: dict[str, int] = {}
    if options.get("stackwalk_max_total_frames"):
        bounds["max_total_frames"] = _positive_number(options, "stackwalk_max_total_frames", int)
    mib = 1024 * 1024
    if options.get("stackwalk_max_json_mb"):
        megabytes = _positive_number(options, "stackwalk_max_json_mb", float)
        bounds["max_json_bytes"] = int(megabytes * mib)
    if options.get("stackwalk_max_rss_mb"):
        bounds["max_rss_bytes"] = _positive_number(options, "stackwalk_max_rss_mb", int) * mib
    return bounds


class Processor:
    """Options (all optional): `stackwalk_max_frames` (frames per thread, default 1024),
    `stackwalk_timeout_s` (seconds per dump, default 120, `none` for no limit), `hostname`
    (shown in the first processor note), `beta_version_api` (URL of a VersionString-style
    service) or `beta_version_file` (JSON rows of the same shape) to look up the real version of
    beta and aurora builds; without either, versions stay as reported."""

    def __init__(
        self,
        *,
        symbols: SymbolProvider | None,
        metrics: Metrics,
        options: Mapping[str, str] | None = None,
        walker: stackwalk.Walker | None = None,
    ) -> None:
        options = options or {}
        for unknown in sorted(set(options) - KNOWN_OPTIONS):
            logger.warning("unknown processor option %r ignored", unknown)
        self.metrics = metrics
        named = build_rulesets(
            symbols=symbols,
            metrics=metrics,
            stackwalk_max_frames=_positive_int(options, "stackwalk_max_frames", 1024),
            stackwalk_timeout_s=_timeout(options, "stackwalk_timeout_s", 120.0),
            walker=walker,
            beta_versions=beta_version.version_source(options),
            stackwalk_bounds=_stackwalk_bounds(options),
        )
        # The names a queue message may ask for; internal ones (poison) are left out.
        self.rulesets: tuple[str, ...] = tuple(
            name for name in named if name in RULESETS and RULESETS[name].selectable
        )
        self._pipeline = Pipeline(
            {**named, POISON: build_poison_rules(metrics)},
            metrics,
            hostname=options.get("hostname") or None,
            fresh_rulesets=frozenset(
                name for name, ruleset in RULESETS.items()
                if ruleset.starts_from is StartsFrom.RAW_CRASH
            ),
        )

    @classmethod
    def ruleset_names(cls) -> tuple[str, ...]:
        """What `enqueue ID:<ruleset>` accepts, known without building a processor."""
        return selectable_rulesets()

    def process(
        self,
        crash_id: str,
        raw_crash: dict[str, Any],
        dumps: dict[str, bytes],
        *,
        ruleset: str = "default",
        previous: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        crashid.validate(crash_id)
        # An internal ruleset (poison) asked for by name is an unknown ruleset.
        name = ruleset if ruleset in self.rulesets else f"unknown:{ruleset}"
        declared = RULESETS.get(name)
        fallback = None
        if declared is not None and declared.needs_previous_processed and not previous:
            # Nothing stored to start from: its fallback (a full processing) is the useful answer.
            fallback = declared.fallback
        processed = self._pipeline.process_crash(
            fallback or name, crash_id, raw_crash, dumps, previous
        )
        if fallback is not None:
            processed["processor_notes"] += (
                f"\n{name}: no previous processed crash; ran the {fallback} ruleset"
            )
        return processed

    def poison(
        self, crash_id: str, raw_crash: dict[str, Any] | None, reason: str
    ) -> dict[str, Any]:
        """A processed crash for a crash that could not be processed (it killed its workers):
        success False, a note naming the cause, and the metadata that needs no dump."""
        crashid.validate(crash_id)
        processed = self._pipeline.process_crash(POISON, crash_id, raw_crash or {}, {})
        processed["success"] = False
        cause = " ".join(str(reason).split())[:MAX_REASON] or "unknown cause"
        processed["processor_notes"] += f"\npoison crash: {cause}"
        self.metrics.incr("processor.poison_crash")
        return processed
