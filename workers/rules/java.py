"""Java stack traces (Socorro's JavaStackTraceRule): a public form without the exception
message (it can hold user data) next to the raw, protected one."""

from __future__ import annotations

import re

from procsupervisor.workers.rules.base import CrashContext, Rule

MAX_TRACE = 100_000
# "java.lang.IllegalStateException: message" -> the class name; Java class names are dotted
# identifiers, possibly with $ for inner classes.
EXCEPTION_HEAD = re.compile(r"^(?P<cls>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?::\s.*)?$")


def sanitize_java_stack_trace(trace: str) -> str:
    """Keeps exception class names and frame lines ("at ..."); drops exception messages and
    any line that is neither."""
    lines = []
    for line in trace.splitlines():
        stripped = line.strip()
        if stripped.startswith(("at ", "...")) or not stripped:
            lines.append(line)
            continue
        caused_by = stripped.startswith("Caused by: ")
        head = stripped.removeprefix("Caused by: ")
        match = EXCEPTION_HEAD.match(head)
        if match:
            lines.append(("Caused by: " if caused_by else "") + match.group("cls"))
        else:
            lines.append("<redacted>")
    return "\n".join(lines)


class JavaStackTraceRule(Rule):
    def predicate(self, ctx: CrashContext) -> bool:
        trace = ctx.raw_crash.get("JavaStackTrace")
        return isinstance(trace, str) and bool(trace.strip())

    def action(self, ctx: CrashContext) -> None:
        trace = ctx.raw_crash["JavaStackTrace"][:MAX_TRACE]
        ctx.processed["java_stack_trace_raw"] = trace
        ctx.processed["java_stack_trace"] = sanitize_java_stack_trace(trace)
