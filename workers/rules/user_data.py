"""User-supplied data (Socorro's UserDataRule / EnvironmentRule). Fields hold PII: the
destinations decide what is public."""

from __future__ import annotations

from procsupervisor.workers.rules.base import CrashContext, Rule
from procsupervisor.workers.rules.values import as_str

USER_FIELDS = (
    ("url", "URL"),
    ("user_comments", "Comments"),
    ("app_notes", "Notes"),
    ("useragent_locale", "useragent_locale"),
)


class UserDataRule(Rule):
    def action(self, ctx: CrashContext) -> None:
        for field, annotation in USER_FIELDS:
            value = as_str(ctx.raw_crash.get(annotation))
            if value:
                ctx.processed[field] = value
