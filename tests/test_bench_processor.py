"""The benchmark processor that scripts/bench_pool.py and bench_e2e.py run in real workers."""

from __future__ import annotations

import pytest

from procsupervisor.workers.bench_processor import BenchProcessor, burn_cpu, units_per_ms


def test_process_and_poison_give_minimal_processed_crashes() -> None:
    processor = BenchProcessor(symbols=None, metrics=None, options={"work_units": "2"})
    assert processor.work_units == 2
    assert processor.rulesets == ("default",)
    done = processor.process("id-1", {"ProductName": "Bench"}, {"upload_file_minidump": b"MDMP"})
    assert done == {"crash_id": "id-1", "uuid": "id-1", "success": True, "processor_notes": ""}
    poisoned = processor.poison("id-2", {}, "killed its worker twice")
    assert poisoned["success"] is False
    assert poisoned["processor_notes"] == "poison crash: killed its worker twice"


def test_work_units_default_to_none_and_must_be_an_integer() -> None:
    assert BenchProcessor(symbols=None, metrics=None, options=None).work_units == 0
    with pytest.raises(ValueError, match="work_units"):
        BenchProcessor(symbols=None, metrics=None, options={"work_units": "lots"})


def test_burn_cpu_is_a_fixed_amount_of_work() -> None:
    assert burn_cpu(3) == 3 * sum(i * i for i in range(1000))
    assert units_per_ms() > 0
