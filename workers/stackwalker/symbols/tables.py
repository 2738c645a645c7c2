"""The sections of a symbol index: names, element types, and which ones must be parallel.

Shared by the builder (parser.py), the serializer and the reader (index.py), so the three can
never disagree about the layout.
"""

from __future__ import annotations

from array import array

NO_STRING = 0xFFFFFFFF  # string id meaning "none"; also "no parent" in tree sections

# (name, array typecode). Order is the on-disk order; append only, bump FORMAT_VERSION otherwise.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("meta", "B"),  # JSON: module line fields and parse statistics
    ("str_offsets", "Q"),  # string i is str_data[str_offsets[i]:str_offsets[i+1]]
    ("str_data", "B"),
    ("func_base", "Q"),  # sorted, non-overlapping
    ("func_high", "Q"),  # inclusive end
    ("func_param", "Q"),
    ("func_name", "I"),
    ("func_flags", "B"),  # bit 0: FUNC m (multiple)
    ("func_line_start", "I"),  # len = funcs + 1; lines of func i are [start[i], start[i+1])
    ("func_inline_start", "I"),  # len = funcs + 1; inline range nodes of func i
    ("line_base", "Q"),  # sorted within each function
    ("line_high", "Q"),
    ("line_number", "Q"),
    ("line_file", "I"),  # FILE name string id, NO_STRING if the id is unknown
    ("public_addr", "Q"),  # sorted, unique
    ("public_param", "Q"),
    ("public_name", "I"),
    ("public_flags", "B"),
    ("inline_base", "Q"),  # per function: pre-order of the containment tree
    ("inline_high", "Q"),
    ("inline_parent", "I"),  # absolute node index, NO_STRING at the top
    ("inline_record", "I"),
    ("inlrec_name", "I"),  # INLINE_ORIGIN name, NO_STRING if unknown
    ("inlrec_line", "Q"),
    ("inlrec_file", "I"),  # call-site FILE name; NO_STRING: old syntax or unknown id
    ("inlrec_range_start", "I"),  # len = records + 1
    ("inlrec_range_base", "Q"),  # every range of the record, in record order
    ("inlrec_range_size", "Q"),
    ("cfi_init_base", "Q"),
    ("cfi_init_high", "Q"),
    ("cfi_init_rules", "I"),
    ("cfi_delta_addr", "Q"),
    ("cfi_delta_rules", "I"),
    ("win4_base", "Q"),
    ("win4_high", "Q"),
    ("win4_parent", "I"),
    ("win4_values", "Q"),  # WIN_FIELDS values per record
    ("win4_program", "I"),  # NO_STRING when has_program is 0
    ("win0_base", "Q"),
    ("win0_high", "Q"),
    ("win0_parent", "I"),
    ("win0_values", "Q"),
    ("win0_program", "I"),
)

WIN_FIELDS = (
    "prolog_size",
    "epilog_size",
    "parameter_size",
    "saved_register_size",
    "local_size",
    "max_stack_size",
    "allocates_base_pointer",
)

# Groups whose sections must have equal lengths (checked when loading), with the multiplier
# relating each to the group's element count.
PARALLEL_GROUPS: tuple[tuple[tuple[str, int], ...], ...] = (
    (("func_base", 1), ("func_high", 1), ("func_param", 1), ("func_name", 1), ("func_flags", 1)),
    (("line_base", 1), ("line_high", 1), ("line_number", 1), ("line_file", 1)),
    (("public_addr", 1), ("public_param", 1), ("public_name", 1), ("public_flags", 1)),
    (("inline_base", 1), ("inline_high", 1), ("inline_parent", 1), ("inline_record", 1)),
    (("inlrec_name", 1), ("inlrec_line", 1), ("inlrec_file", 1)),
    (("inlrec_range_base", 1), ("inlrec_range_size", 1)),
    (("cfi_init_base", 1), ("cfi_init_high", 1), ("cfi_init_rules", 1)),
    (("cfi_delta_addr", 1), ("cfi_delta_rules", 1)),
    (
        ("win4_base", 1),
        ("win4_high", 1),
        ("win4_parent", 1),
        ("win4_program", 1),
        ("win4_values", len(WIN_FIELDS)),
    ),
    (
        ("win0_base", 1),
        ("win0_high", 1),
        ("win0_parent", 1),
        ("win0_program", 1),
        ("win0_values", len(WIN_FIELDS)),
    ),
)


def empty_sections() -> dict[str, array]:
    return {name: array(code) for name, code in SECTIONS}
