"""Every named ruleset: what it needs, and its rules in order (Socorro's mozilla_rulesets,
docs/processing.md §7.5).

`RULESETS` declares each ruleset's needs: where it starts (the raw crash, or the previous
processed crash), which stored data it reads, whether a queue message may name it. The worker
and the processor ask these declarations instead of testing ruleset or queue names.
`build_rulesets` and `build_poison_rules` give the rules themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules import (
    addons,
    android,
    annotations,
    beta_version,
    crashing_thread,
    dates,
    dump_facts,
    hygiene,
    identifiers,
    java,
    memory_measures,
    memory_report,
    moz_crash_reason,
    mozilla_fields,
    process_info,
    product,
    signature,
    stack_summary,
    stackwalk,
    structured_annotations,
    system_info,
    user_data,
)
from procsupervisor.workers.rules.base import Rule
from procsupervisor.workers.stackwalker.model import SymbolProvider

DEFAULT = "default"
REGENERATE_SIGNATURE = "regenerate_signature"
POISON = "poison"

# Logical queues whose crashes were processed before (docs/processing.md §12, the reprocessing
# flow): a run for one of them reads the stored processed crash even when its ruleset starts
# from the raw crash, so the earlier processing's notes move into processor_history.
REPROCESSING_QUEUES = frozenset({"reprocessing"})


class StartsFrom(Enum):
    RAW_CRASH = "raw crash"  # the processed crash is rebuilt; nothing stale survives
    PREVIOUS_PROCESSED = "previous processed crash"  # the stored one is updated in place


@dataclass(frozen=True)
class Ruleset:
    """What running a ruleset needs from the worker."""

    name: str
    starts_from: StartsFrom = StartsFrom.RAW_CRASH
    # Run instead when the ruleset starts from a previous processed crash and none is stored.
    fallback: str | None = None
    reads_dumps: bool = True
    # False: a raw crash that cannot be read is replaced by a bare record, not an error.
    raw_crash_required: bool = True
    # False: a previous processing's notes are not carried into processor_history.
    keeps_history: bool = True
    # False: internal; a queue message naming it gets the unknown-ruleset treatment.
    selectable: bool = True

    @property
    def needs_previous_processed(self) -> bool:
        return self.starts_from is StartsFrom.PREVIOUS_PROCESSED

    def reads_previous_processed(self, queue: str) -> bool:
        """Whether a run for a crash from the logical `queue` reads the stored processed crash."""
        if self.needs_previous_processed:
            return True
        return self.keeps_history and queue in REPROCESSING_QUEUES


RULESETS: dict[str, Ruleset] = {
    DEFAULT: Ruleset(DEFAULT),
    REGENERATE_SIGNATURE: Ruleset(
        REGENERATE_SIGNATURE, starts_from=StartsFrom.PREVIOUS_PROCESSED, fallback=DEFAULT
    ),
    # A crash that killed its workers: recorded with what needs no dump (a dump is the likely
    # poison), even when its raw crash is unreadable; never asked for by a queue message.
    POISON: Ruleset(
        POISON,
        reads_dumps=False,
        raw_crash_required=False,
        keeps_history=False,
        selectable=False,
    ),
}


def selectable_rulesets() -> tuple[str, ...]:
    """The ruleset names a queue message (`<crash id>:<ruleset>`) may ask for."""
    return tuple(name for name, ruleset in RULESETS.items() if ruleset.selectable)


def ruleset_for(name: str | None) -> Ruleset:
    """The declaration a queue message's ruleset name runs under: an unknown or internal name
    runs like the default ruleset (the processor notes it as unknown)."""
    declared = RULESETS.get(name or DEFAULT)
    if declared is None or not declared.selectable:
        return RULESETS[DEFAULT]
    return declared


def build_rulesets(
    *,
    symbols: SymbolProvider | None,
    metrics: Metrics,
    stackwalk_max_frames: int = 1024,
    stackwalk_timeout_s: float | None = 120.0,
    walker: stackwalk.Walker | None = None,
    beta_versions: beta_version.VersionSource | None = None,
    stackwalk_bounds: dict[str, int] | None = None,
) -> dict[str, list[Rule]]:
    # One generator for both rulesets: it compiles the signature lists once.
    signature_rule = signature.SignatureGeneratorRule()
    default: list[Rule] = [
        # raw crash hygiene first: every later rule reads the cleaned raw crash
        hygiene.DeNullRule(metrics),
        hygiene.DeNoneRule(metrics),
        hygiene.CrashReportKeysRule(),
        hygiene.CollectorMetadataRule(),
        hygiene.ConvertModuleSignatureInfoRule(),
        # metadata from annotations
        annotations.CopyFromRawCrashRule(),
        annotations.AnnotationDefaultsRule(),
        product.ProductRule(),
        product.FenixVersionRewriteRule(),
        product.ESRVersionRewrite(),
        mozilla_fields.SubmittedFromRule(),
        identifiers.IdentifierRule(),
        identifiers.MinidumpSha256HashRule(),
        # the stackwalk and what reads its output
        stackwalk.MinidumpStackwalkRule(
            symbols,
            metrics,
            max_frames_per_thread=stackwalk_max_frames,
            timeout_s=stackwalk_timeout_s,
            walker=walker,
            bounds=stackwalk_bounds,
        ),
        dump_facts.ModuleURLRewriteRule(),
        crashing_thread.CrashingThreadInfoRule(),
        crashing_thread.TruncateStacksRule(metrics),
        dump_facts.PossibleBitFlipsRule(),
        dump_facts.CrashInconsistenciesRule(),
        dump_facts.HasGuardPageAccessRule(),
        product.MajorVersionRule(),
        process_info.ProcessTypeRule(),
        process_info.PluginRule(),
        mozilla_fields.AccessibilityRule(),
        addons.AddonsRule(),
        dates.DatesAndTimesRule(),
        memory_report.OutOfMemoryBinaryRule(),
        structured_annotations.PHCRule(),
        structured_annotations.BreadcrumbsRule(),
        java.JavaStackTraceRule(),
        dump_facts.MacBootArgsRule(),
        dump_facts.MacCrashInfoRule(),
        moz_crash_reason.MozCrashReasonRule(),
        mozilla_fields.UtilityActorsNameRule(),
        stack_summary.ReportTypeRule(),
        system_info.CPUInfoRule(),
        android.AndroidCPUInfoRule(),
        mozilla_fields.DistributionIdRule(),
        system_info.OSInfoRule(),
        android.AndroidOSInfoRule(),
        system_info.PlatformInfoRule(),
        *([beta_version.BetaVersionRule(beta_versions, metrics)] if beta_versions else []),
        system_info.OSPrettyVersionRule(),
        stack_summary.TopMostFilesRule(),
        stack_summary.ModulesInStackRule(),
        stack_summary.MissingSymbolsRule(),
        mozilla_fields.ThemePrettyNameRule(),
        memory_measures.MemoryReportExtraction(),
        dump_facts.SoftErrorsRule(),
        stack_summary.ThreadCountRule(),
        signature_rule,
        dump_facts.ShutDownHangCrashingThreadRule(),
    ]
    return {DEFAULT: default, REGENERATE_SIGNATURE: [signature_rule]}


def build_poison_rules(metrics: Metrics) -> list[Rule]:
    """The poison ruleset: enough to find the crash by product, version and date; nothing here
    reads the dumps."""
    return [
        hygiene.DeNullRule(metrics),
        hygiene.DeNoneRule(metrics),
        product.ProductRule(),
        product.MajorVersionRule(),
        identifiers.IdentifierRule(),
        process_info.ProcessTypeRule(),
        dates.DatesAndTimesRule(),
        system_info.PlatformInfoRule(),
        # what the user said, the first thing a person reads about a crash that kills workers
        user_data.UserDataRule(),
    ]
