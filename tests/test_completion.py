"""How the SUT answers LoadGen: LoadGen's C QuerySamplesComplete found in the installed module,
the response array laid out as its struct, the binding's objects, and real digits runs
through both that LoadGen scores alike."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import axq
from axq.entry import use_libraries
from axq.progress import Reporter

use_libraries()  # axq_mlperf, as recipe code imports it

from axq_mlperf import completion  # noqa: E402

DIGITS = "loadgen_output,classified_digits,framework=pytorch,batch_size=16"
QUIET = Reporter("quiet")


def loaded_base(path: str) -> int:
    """Return where the dynamic loader mapped the start of this file in our process (/proc/self/maps)."""
    real = os.path.realpath(path)
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5] == real and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise AssertionError(f"{real} is not mapped")


def test_the_installed_loadgen_names_its_c_entry_point() -> None:
    function, why = completion.c_entry()
    assert function is not None, why
    assert completion.describe("auto") == "c"
    assert completion.describe("python") == "python (sut_completion=python)"


def test_a_loadgen_release_whose_layout_was_not_checked_uses_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    assert completion.installed_version() == importlib.metadata.version("mlcommons-loadgen")
    monkeypatch.setattr(completion, "installed_version", lambda: "7.1.0")
    completion.c_entry.cache_clear()
    try:
        function, why = completion.c_entry()
        assert function is None and why == "mlcommons-loadgen 7.1.0: axq has not checked its QuerySampleResponse layout"
        assert completion.describe("auto") == f"python ({why})"
        assert isinstance(completion.responses(4, "auto"), completion.ObjectResponses)
    finally:
        completion.c_entry.cache_clear()


def test_symbol_addresses_match_what_the_dynamic_loader_gives() -> None:
    # The anchor is exported: dlsym's address must be the mapped base plus what the file says.
    path = completion.lg.__file__
    found = completion.symbols(path, (completion.ANCHOR, completion.C_SYMBOL, b"no_such_symbol"))
    assert set(found) == {completion.ANCHOR, completion.C_SYMBOL}
    module = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    exported = ctypes.cast(module.PyInit_mlperf_loadgen, ctypes.c_void_p).value
    assert exported == loaded_base(path) + found[completion.ANCHOR]


def test_a_file_without_a_symbol_table_or_not_elf_is_refused(tmp_path: Path) -> None:
    stripped = tmp_path / "stripped.so"
    shutil.copyfile(completion.lg.__file__, stripped)
    data = bytearray(stripped.read_bytes())
    offset, = struct.unpack_from("<Q", data, 0x28)
    size, count = struct.unpack_from("<HH", data, 0x3A)
    for i in range(count):  # every SHT_SYMTAB section header becomes SHT_NULL, as if stripped
        if struct.unpack_from("<I", data, offset + i * size + 4)[0] == completion.SHT_SYMTAB:
            struct.pack_into("<I", data, offset + i * size + 4, 0)
    stripped.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="no symbol table"):
        completion.symbols(str(stripped), (completion.C_SYMBOL,))
    text = tmp_path / "text.so"
    text.write_text("not a shared object, but long enough to hold an ELF header's fields" * 2)
    with pytest.raises(ValueError, match="not a 64-bit"):
        completion.symbols(str(text), (completion.C_SYMBOL,))


def test_the_response_array_is_laid_out_as_loadgens_struct_and_grows() -> None:
    responses = completion.ArrayResponses(4)
    assert responses.array.dtype.itemsize == responses.stride == 8 * len(completion.response_dtype().names)
    responses.hold([11, 12])
    responses.put(0, np.array([7, 8]))
    assert list(responses.array["id"][:2]) == [11, 12] and list(responses.buffer[:2]) == [7, 8]
    base = responses.buffer.ctypes.data
    assert list(responses.array["data"]) == [base + 8 * i for i in range(4)] and set(responses.array["size"]) == {8}
    responses.hold(np.arange(100, 106, dtype=np.uint64))  # more than it was made for: it grows
    responses.put(4, np.array([1, 2]))
    assert responses.array["data"][5] == responses.buffer.ctypes.data + 40 and list(responses.buffer[4:6]) == [1, 2]
    assert responses.address == responses.array.ctypes.data and list(responses.array["id"]) == list(range(100, 106))


def test_binding_responses_are_reused_and_point_at_each_prediction() -> None:
    responses = completion.ObjectResponses(4)
    responses.hold([11, 12])
    responses.put(0, np.array([7, 8]))
    first = responses.slots[:2]
    assert [r.id for r in first] == [11, 12] and list(responses.buffer[:2]) == [7, 8]
    assert first[1].data - first[0].data == 8 and all(r.size == 8 for r in first)
    responses.hold(np.array([21, 22, 23], dtype=np.uint64))
    assert responses.slots[0] is first[0] and [r.id for r in responses.slots[:3]] == [21, 22, 23]
    responses.hold(list(range(6)))
    responses.put(4, np.array([1, 2]))
    assert responses.slots[5].data == responses.buffer.ctypes.data + 40 and list(responses.buffer[4:6]) == [1, 2]


def test_a_run_answered_through_the_c_entry_point_logs_what_the_binding_logs(collection: Path) -> None:
    # LoadGen logs each response's data: the same bytes for every sample means the array's
    # layout (ids, data pointers, sizes) is the struct LoadGen reads.
    runs = {kind: axq.byquery(f"{DIGITS},loadgen_mode=AccuracyOnly,sut_completion={kind}", reporter=QUIET)
            for kind in completion.KINDS}
    logged = {kind: sorted((r["qsl_idx"], r["data"]) for r in
                           json.loads((entry.path / "mlperf_log_accuracy.json").read_text()))
              for kind, entry in runs.items()}
    assert len(logged["auto"]) == runs["auto"].results["total"] == 450
    assert logged["auto"] == logged["python"]
    assert runs["auto"].results["sut"]["completion"] == "c"
    assert runs["python"].results["sut"]["completion"] == "python (sut_completion=python)"


def test_a_performance_run_through_the_c_entry_point_is_valid(collection: Path) -> None:
    entry = axq.byquery(f"{DIGITS},loadgen_mode=PerformanceOnly,loadgen_scenario=Offline,loadgen_duration_s=0.5",
                        reporter=QUIET)
    assert entry.results["result_valid"], entry.results.get("invalid_reason")
    assert entry.results["sut"]["completion"] == "c"
    found = entry.get("latency_breakdown")
    assert found["samples"] == entry.results["sut"]["samples"] > 0
