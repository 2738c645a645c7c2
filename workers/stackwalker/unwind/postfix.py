"""Breakpad's postfix evaluator (docs/formats/breakpad.md §6.1).

Shared by x86 STACK WIN programs and STACK CFI rules. Values wrap at the walker's word width;
memory dereferences (`^`) go only through the thread's stack `Memory`.
"""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import Memory
from procsupervisor.workers.stackwalker.unwind.words import read_word, word_mask

_BINARY_OPERATORS = frozenset("+-*/%@")


class PostfixEvaluator:
    """Evaluates postfix expressions against a mutable dictionary of named values.

    `dictionary` is shared with the caller on purpose: Breakpad's assignments persist even when a
    later token of the same program fails (docs/formats/breakpad.md §4.1 step 8).
    """

    def __init__(self, dictionary: dict[str, int], memory: Memory | None, word_size: int) -> None:
        self.dictionary = dictionary
        self.memory = memory
        self.word_size = word_size
        self.mask = word_mask(word_size)
        self.assigned: set[str] = set()
        self._stack: list[str | int] = []

    def evaluate(self, program: str) -> bool:
        """Run a STACK WIN style program: every token must succeed and the stack end empty."""
        self._stack = []
        if not self._run(program):
            return False
        return not self._stack

    def evaluate_for_value(self, expression: str) -> int | None:
        """Run a CFI style expression: exactly one value must be left on the stack."""
        self._stack = []
        if not self._run(expression) or len(self._stack) != 1:
            return None
        return self._pop_value()

    def _run(self, text: str) -> bool:
        for token in text.split():
            # MSVC LTO program strings glue `=` to the next token ("=$eip").
            if len(token) > 1 and token[0] == "=":
                if not self._evaluate_token("=") or not self._evaluate_token(token[1:]):
                    return False
            elif not self._evaluate_token(token):
                return False
        return True

    def _evaluate_token(self, token: str) -> bool:
        if token in _BINARY_OPERATORS:
            right = self._pop_value()
            if right is None:
                return False
            left = self._pop_value()
            if left is None:
                return False
            result = self._apply(token, left, right)
            if result is None:
                return False
            self._stack.append(result & self.mask)
            return True
        if token == "^":
            address = self._pop_value()
            if address is None:
                return False
            value = read_word(self.memory, address, self.word_size)
            if value is None:
                return False
            self._stack.append(value)
            return True
        if token == "=":
            value = self._pop_value()
            if value is None or not self._stack:
                return False
            target = self._stack.pop()
            if not isinstance(target, str) or self._literal(target) is not None:
                return False
            if not target.startswith("$"):
                return False
            self.dictionary[target] = value
            self.assigned.add(target)
            return True
        self._stack.append(token)
        return True

    def _apply(self, operator: str, left: int, right: int) -> int | None:
        if operator == "+":
            return left + right
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        if operator in "/%":
            # The reference binary crashes on a zero divisor; a failed evaluation is the sane
            # equivalent.
            if right == 0:
                return None
            return left // right if operator == "/" else left % right
        # "@" aligns left down to a multiple of right.
        return left & ~((right - 1) & self.mask)

    def _pop_value(self) -> int | None:
        if not self._stack:
            return None
        item = self._stack.pop()
        if isinstance(item, int):
            return item
        literal = self._literal(item)
        if literal is not None:
            return literal
        value = self.dictionary.get(item)
        return None if value is None else value & self.mask

    def _literal(self, token: str) -> int | None:
        """An unsigned decimal literal, optionally negated; anything else is an identifier."""
        negative = token.startswith("-")
        digits = token[1:] if negative else token
        if not digits.isascii() or not digits.isdigit():
            return None
        value = int(digits)
        if value > self.mask:
            return None
        return (-value) & self.mask if negative else value
