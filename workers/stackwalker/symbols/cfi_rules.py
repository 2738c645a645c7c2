"""CFI rule-set text (BREAKPAD.md §6.3): "name: expr name: expr ..." applied into a dict."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=8192)
def parse_rule_set(text: str) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The (name, expression) rules in `text`, in order, and whether it parsed without error.

    Like Breakpad's CFIRuleParser: on an error the rules reported before it are still returned.
    Expression tokens before the first name are dropped when a name follows (the reference does
    the same). Rule texts repeat a lot across a module, hence the cache."""
    rules: list[tuple[str, str]] = []
    name: str | None = None
    expression: list[str] = []
    for token in text.replace("\t", " ").split(" "):
        if not token:
            continue
        if token.endswith(":"):
            if len(token) < 2:
                return tuple(rules), False
            if name is not None:
                if not expression:
                    return tuple(rules), False
                rules.append((name, " ".join(expression)))
            name = token[:-1]
            expression = []
        else:
            expression.append(token)
    if name is None or not expression:
        return tuple(rules), False
    rules.append((name, " ".join(expression)))
    return tuple(rules), True


def apply_rule_set(text: str, rules: dict[str, str]) -> bool:
    """Apply the rules in `text` to `rules` in order; False on a parse error (rules before the
    error stay applied)."""
    parsed, ok = parse_rule_set(text)
    rules.update(parsed)
    return ok
