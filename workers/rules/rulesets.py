"""The named rulesets and their order (Socorro's mozilla_rulesets, SOCORRO.md section 7.5)."""

from __future__ import annotations

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
    beta_versions: beta_version.VersionSource | None = None,
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
