"""STACK CFI: recovering caller registers from a rule set (docs/formats/breakpad.md §6.4).

A rule set is a dict from register name (or `.cfa` / `.ra`) to a postfix expression, as returned
by `SymbolIndexProtocol.find_cfi_rules`; the rule text itself is parsed by the symbols package
(symbols/cfi_rules.py).
"""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import Memory
from procsupervisor.workers.stackwalker.unwind.postfix import PostfixEvaluator


def find_caller_registers(
    rules: dict[str, str],
    callee_registers: dict[str, int],
    memory: Memory | None,
    word_size: int,
) -> dict[str, int] | None:
    """Evaluate a rule set with the callee's valid registers (keyed by CFI name).

    Returns the recovered registers plus `.cfa` and `.ra`, or None when the CFA or return
    address cannot be computed. Registers whose own rule fails are simply left out.
    """
    cfa_rule = rules.get(".cfa")
    ra_rule = rules.get(".ra")
    if not cfa_rule or not ra_rule:
        return None
    cfa = PostfixEvaluator(dict(callee_registers), memory, word_size).evaluate_for_value(cfa_rule)
    if cfa is None:
        return None
    with_cfa = dict(callee_registers)
    with_cfa[".cfa"] = cfa
    ra = PostfixEvaluator(dict(with_cfa), memory, word_size).evaluate_for_value(ra_rule)
    if ra is None:
        return None
    caller: dict[str, int] = {}
    for name, rule in rules.items():
        if name in (".cfa", ".ra"):
            continue
        # Each rule sees only the callee's values, never another rule's result.
        value = PostfixEvaluator(dict(with_cfa), memory, word_size).evaluate_for_value(rule)
        if value is not None:
            caller[name] = value
    caller[".ra"] = ra
    caller[".cfa"] = cfa
    return caller
