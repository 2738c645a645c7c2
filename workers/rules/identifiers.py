"""Identifiers: crash id and the main minidump's checksum."""

from __future__ import annotations

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import dig


class IdentifierRule(Rule):
    """`crash_id` and `uuid` are the id the crash was queued under, never the raw `uuid` field:
    that one is client data, and the id has already been validated."""

    def action(self, ctx: CrashContext) -> None:
        ctx.processed["crash_id"] = ctx.crash_id
        ctx.processed["uuid"] = ctx.crash_id
        raw_uuid = ctx.raw_crash.get("uuid")
        if raw_uuid is not None and raw_uuid != ctx.crash_id:
            ctx.add_note("IdentifierRule: raw crash uuid differs from the crash id")


class MinidumpSha256HashRule(Rule):
    """`minidump_sha256_hash` from the collector's checksums (or the legacy annotation)."""

    def action(self, ctx: CrashContext) -> None:
        checksum = dig(ctx.raw_crash, "metadata", "dump_checksums", "upload_file_minidump")
        if not isinstance(checksum, str):
            checksum = ctx.raw_crash.get("MinidumpSha256Hash")
        ctx.processed["minidump_sha256_hash"] = checksum if isinstance(checksum, str) else ""
