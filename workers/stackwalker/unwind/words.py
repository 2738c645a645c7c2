"""Stack words of the walker's width: the one way unwinders and postfix programs read memory."""

from __future__ import annotations

from procsupervisor.workers.stackwalker.model import Memory


def word_mask(word_size: int) -> int:
    return (1 << (8 * word_size)) - 1


def read_word(memory: Memory | None, address: int, word_size: int) -> int | None:
    """The little-endian word at `address` (wrapped to the word width), None if unreadable."""
    if memory is None:
        return None
    address &= word_mask(word_size)
    if word_size == 4:
        return memory.read_u32(address)
    return memory.read_u64(address)
