"""Breakpad's postfix evaluator and CFI rule parsing (docs/formats/breakpad.md §6.1, 6.3, 6.4)."""

from __future__ import annotations

import pytest
from _unwind_helpers import StackMemory

from procsupervisor.workers.stackwalker.symbols.cfi_rules import apply_rule_set
from procsupervisor.workers.stackwalker.unwind.cfi import find_caller_registers
from procsupervisor.workers.stackwalker.unwind.postfix import PostfixEvaluator


def evaluator(dictionary=None, memory=None, word_size=4):
    return PostfixEvaluator({} if dictionary is None else dictionary, memory, word_size)


def test_arithmetic_and_wrapping() -> None:
    assert evaluator().evaluate_for_value("2 3 + 4 *") == 20
    assert evaluator().evaluate_for_value("1 2 -") == 0xFFFFFFFF
    assert evaluator(word_size=8).evaluate_for_value("1 2 -") == 0xFFFFFFFFFFFFFFFF
    assert evaluator().evaluate_for_value("17 5 /") == 3
    assert evaluator().evaluate_for_value("17 5 %") == 2
    assert evaluator().evaluate_for_value("0x1007 16 @") is None
    assert evaluator({"$esp": 0x1007}).evaluate_for_value("$esp 16 @") == 0x1000


def test_literals() -> None:
    assert evaluator().evaluate_for_value("-4") == 0xFFFFFFFC
    # hex is not a literal, and an unknown identifier fails the evaluation
    assert evaluator().evaluate_for_value("0x10") is None
    assert evaluator().evaluate_for_value("4294967296") is None
    assert evaluator(word_size=8).evaluate_for_value("4294967296") == 1 << 32


def test_division_by_zero_fails() -> None:
    assert evaluator().evaluate_for_value("1 0 /") is None
    assert evaluator().evaluate_for_value("1 0 %") is None


def test_dereference_reads_only_the_stack() -> None:
    memory = StackMemory(0x1000, 0x100, 4).put(0x1010, 0xDEADBEEF)
    assert evaluator({"$esp": 0x1000}, memory).evaluate_for_value("$esp 16 + ^") == 0xDEADBEEF
    assert evaluator({"$esp": 0x2000}, memory).evaluate_for_value("$esp ^") is None
    assert evaluator({"$esp": 0x1000}, None).evaluate_for_value("$esp ^") is None


def test_assignments_and_program_rules() -> None:
    memory = StackMemory(0x1000, 0x100, 4).put(0x1020, 0x1040, 0x401234)
    dictionary = {"$ebp": 0x1020, "$esp": 0x1000}
    program = "$T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + ="
    run = evaluator(dictionary, memory)
    assert run.evaluate(program)
    assert dictionary["$eip"] == 0x401234
    assert dictionary["$ebp"] == 0x1040
    assert dictionary["$esp"] == 0x1028
    assert run.assigned == {"$T0", "$eip", "$ebp", "$esp"}


def test_glued_assignment_token() -> None:
    dictionary = {"$ebp": 8}
    run = evaluator(dictionary)
    assert run.evaluate("$T0 $ebp 4 + =$eip $T0 =")
    assert dictionary["$T0"] == 12 and dictionary["$eip"] == 12


def test_failed_program_keeps_earlier_assignments() -> None:
    dictionary: dict[str, int] = {"$esp": 0x10}
    run = evaluator(dictionary, StackMemory(0x1000, 0x10, 4))
    assert not run.evaluate("$ebx 7 = $eip $esp ^ =")
    assert dictionary["$ebx"] == 7
    assert "$eip" not in dictionary


def test_assignment_rules() -> None:
    assert not evaluator().evaluate(".raSearch 4 =")  # only $ names can be assigned
    assert not evaluator().evaluate("5 4 =")
    assert not evaluator().evaluate("$a 1 = 2")  # leftover stack item
    assert evaluator().evaluate_for_value("1 2") is None


def test_parse_rule_set() -> None:
    rules: dict[str, str] = {}
    assert apply_rule_set(".cfa: $rsp 8 +\t.ra: .cfa -8 + ^", rules)
    assert rules == {".cfa": "$rsp 8 +", ".ra": ".cfa -8 + ^"}
    assert apply_rule_set("$rbp: .cfa -16 + ^ .cfa: $rsp 16 +", rules)
    assert rules[".cfa"] == "$rsp 16 +" and rules["$rbp"] == ".cfa -16 + ^"
    assert not apply_rule_set("orphan .cfa: 1", {})
    partial: dict[str, str] = {}
    assert not apply_rule_set("$r1: 4 $r2: .ra: 5", partial)
    assert partial == {"$r1": "4"}
    assert not apply_rule_set(": 5", {})


@pytest.mark.parametrize(
    ("text", "ok", "applied"),
    [
        # Cases where two former parsers disagreed; Breakpad's CFIRuleParser decides.
        ("orphan .cfa: 1", False, {}),  # tokens before any name: an error, nothing applied
        (".cfa: 1 :", False, {}),  # a lone ":" fails before the pending rule is reported
        (".cfa: 1 .ra:", False, {".cfa": "1"}),  # reported at the next name, then the error
        ("", False, {}),  # no rule at all
        (" \t ", False, {}),
        (".cfa: $rsp\r\n8 + .ra:\r.cfa", True, {".cfa": "$rsp 8 +", ".ra": ".cfa"}),
        ("a: \v1", True, {"a": "\v1"}),  # only space, tab, CR and LF separate tokens
    ],
)
def test_rule_set_edge_cases(text: str, ok: bool, applied: dict[str, str]) -> None:
    rules: dict[str, str] = {}
    assert apply_rule_set(text, rules) is ok
    assert rules == applied


def test_find_caller_registers() -> None:
    memory = StackMemory(0x1000, 0x100, 8).put(0x1000, 0x1080, 0x401000)
    rules = {
        ".cfa": "$rsp 16 +",
        ".ra": ".cfa -8 + ^",
        "$rbp": ".cfa -16 + ^",
        "$rbx": ".undef",
        "$r12": ".ra",  # .ra is not visible to register rules
    }
    caller = find_caller_registers(rules, {"$rsp": 0x1000}, memory, 8)
    assert caller == {".cfa": 0x1010, ".ra": 0x401000, "$rbp": 0x1080}
    assert find_caller_registers({".cfa": "$rsp"}, {"$rsp": 1}, memory, 8) is None
    assert find_caller_registers({".cfa": "$rsp ^", ".ra": "1"}, {"$rsp": 0}, memory, 8) is None
