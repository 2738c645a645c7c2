"""The named rulesets and their order (Socorro's mozilla_rulesets, SOCORRO.md section 7.5)."""

from __future__ import annotations

from procsupervisor.metrics import Metrics
from procsupervisor.workers.rules import (
    addons,
    annotations,
    crashing_thread,
    dates,
    hygiene,
    identifiers,
    java,
    memory_report,
    moz_crash_reason,
    process_info,
    product,
    signature,
    stack_summary,
    stackwalk,
    system_info,
    user_data,
)
from procsupervisor.workers.rules.base import Rule
from procsupervisor.workers.stackwalker.model import SymbolProvider

DEFAULT = "default"
REGENERATE_SIGNATURE = "regenerate_signature"


def build_rulesets(
    *,
    symbols: SymbolProvider | None,
    metrics: Metrics,
    stackwalk_max_frames: int = 1024,
    stackwalk_timeout_s: float | None = 120.0,
    walker: stackwalk.Walker | None = None,
) -> dict[str, list[Rule]]:
    # One generator for both rulesets: it compiles the signature lists once.
    signature_rule = signature.SignatureGeneratorRule()
    default: list[Rule] = [
        # raw crash hygiene first: every later rule reads the cleaned raw crash
        hygiene.DeNullRule(metrics),
        hygiene.DeNoneRule(metrics),
        hygiene.CrashReportKeysRule(),
        hygiene.CollectorMetadataRule(),
        # metadata from annotations
        annotations.CopyFromRawCrashRule(),
        product.ProductRule(),
        product.ESRVersionRewrite(),
        identifiers.IdentifierRule(),
        identifiers.MinidumpSha256HashRule(),
        # the stackwalk and what reads its output
        stackwalk.MinidumpStackwalkRule(
            symbols,
            metrics,
            max_frames_per_thread=stackwalk_max_frames,
            timeout_s=stackwalk_timeout_s,
            walker=walker,
        ),
        crashing_thread.CrashingThreadInfoRule(),
        crashing_thread.TruncateStacksRule(metrics),
        product.MajorVersionRule(),
        process_info.ProcessTypeRule(),
        process_info.PluginRule(),
        addons.AddonsRule(),
        dates.DatesAndTimesRule(),
        user_data.UserDataRule(),
        memory_report.OutOfMemoryBinaryRule(),
        java.JavaStackTraceRule(),
        moz_crash_reason.MozCrashReasonRule(),
        stack_summary.ReportTypeRule(),
        system_info.CPUInfoRule(),
        system_info.OSInfoRule(),
        system_info.PlatformInfoRule(),
        system_info.OSPrettyVersionRule(),
        stack_summary.TopMostFilesRule(),
        stack_summary.ModulesInStackRule(),
        stack_summary.MissingSymbolsRule(),
        stack_summary.ThreadCountRule(),
        signature_rule,
    ]
    return {DEFAULT: default, REGENERATE_SIGNATURE: [signature_rule]}
