"""CFI rule-set text (BREAKPAD.md §6.3): "name: expr name: expr ..." applied into a dict."""

from __future__ import annotations


def apply_rule_set(text: str, rules: dict[str, str]) -> bool:
    """Apply the rules in `text` to `rules` in order, like Breakpad's CFIRuleParser.

    Returns False on a parse error; rules reported before the error stay applied. Expression
    tokens before the first name are dropped when a name follows (the reference does the same)."""
    name: str | None = None
    expression: list[str] = []
    for token in text.replace("\t", " ").split(" "):
        if not token:
            continue
        if token.endswith(":"):
            if len(token) < 2:
                return False
            if name is not None:
                if not expression:
                    return False
                rules[name] = " ".join(expression)
            name = token[:-1]
            expression = []
        else:
            expression.append(token)
    if name is None or not expression:
        return False
    rules[name] = " ".join(expression)
    return True
