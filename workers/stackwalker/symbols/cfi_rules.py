"""CFI rule-set text (docs/formats/breakpad.md §6.3): "name: expr name: expr ..." applied into a
dict.

The one parser of rule sets: the symbol index applies STACK CFI INIT and delta rules with it,
and the unwinder only evaluates the resulting dict (unwind/cfi.py).
"""

from __future__ import annotations

import re
from functools import lru_cache

# Breakpad tokenises rule text with strtok on these four characters, no other whitespace.
_TOKEN_BREAKS = re.compile(r"[ \t\r\n]+")

RuleList = tuple[tuple[str, str], ...]


@lru_cache(maxsize=8192)
def parse_rule_set(text: str) -> tuple[RuleList, bool]:
    """The (name, expression) rules in `text`, in order, and whether it parsed without error.

    Breakpad's CFIRuleParser: a rule is reported when the next name or the end is reached, so
    on an error the rules reported before it are returned. Errors: expression tokens before
    any name, a name with an empty expression, a lone ":" (whose pending rule is then never
    reported), and a text with no rule at all. Rule texts repeat a lot across a module, hence
    the cache."""
    rules: list[tuple[str, str]] = []
    name = ""
    expression: list[str] = []
    for token in _TOKEN_BREAKS.split(text):
        if not token:
            continue
        if token.endswith(":"):
            if len(token) < 2:
                return tuple(rules), False
            if name or expression:
                if not name or not expression:
                    return tuple(rules), False
                rules.append((name, " ".join(expression)))
            name = token[:-1]
            expression = []
        else:
            expression.append(token)
    if not name or not expression:
        return tuple(rules), False
    rules.append((name, " ".join(expression)))
    return tuple(rules), True


def apply_rule_set(text: str, rules: dict[str, str]) -> bool:
    """Apply the rules in `text` to `rules` in order (a later rule for a name replaces the
    earlier one); False on a parse error, with the rules reported before it applied."""
    parsed, ok = parse_rule_set(text)
    rules.update(parsed)
    return ok
