"""How the SUT hands completed samples to LoadGen: its C entry point on an array, or its Python binding.

LoadGen's Python binding takes a list of QuerySampleResponse objects and copies each into
a C++ vector before LoadGen sees them. With a model that infers a sample in microseconds
(the digits CNN: 4-10 us), setting each reused object's id (~115 ns) and that copy
(~100 ns) cost the run 4-7% of its time. The wheel compiles LoadGen's C API
(bindings/c_api.cc: `mlperf::c::QuerySamplesComplete(QuerySampleResponse*, size_t)`,
which calls `mlperf::QuerySamplesComplete` as the binding does) into the same module, but
does not export it; the module's symbol table still names it. `c_entry` finds its address
(the exported PyInit_mlperf_loadgen's, plus the two symbols' distance in the file) and
`ArrayResponses` calls it, through ctypes (which releases the GIL for the call, as the
binding does), on a numpy array laid out as LoadGen's QuerySampleResponse struct: a
batch's ids are one array assignment. Where the module lacks the symbol (a stripped
build, another platform, a struct of unknown layout), `ObjectResponses` uses the binding,
and the run records which one answered and why (`get sut`: completion).

Both keep one instance's responses for every batch: for a task whose answer is one int64
(classification), response i always points at slot i of the instance's output buffer. An
instance holds the ids of what it answers next (a batch, or an Offline block of many
batches: its ids written once), puts each batch's predictions into their slots and sends
that run of responses. LoadGen copies what it keeps
(the ids, and the data it logs) before QuerySamplesComplete returns, and an instance sends
one batch at a time, so both can be reused at once.

A task whose responses differ in size from sample to sample (detection's boxes; BERT's and
the LLMs' tokens next) wraps either kind in `SizedResponses`: each batch's answers are
encoded into one array by the task, and the responses are pointed into it (`point`).
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import re
import struct
from pathlib import Path
from typing import Any, Protocol

import mlperf_loadgen as lg
import numpy as np

KINDS = ("auto", "python")  # the recipe's sut_completion: the C entry point where found, or the binding
C_SYMBOL = b"_ZN6mlperf1c20QuerySamplesCompleteEPNS_19QuerySampleResponseEm"  # mlperf::c::QuerySamplesComplete
ANCHOR = b"PyInit_mlperf_loadgen"  # exported: where the module was loaded
FIELDS = ("id", "data", "size", "n_tokens")  # LoadGen's QuerySampleResponse, 8 bytes each
VERIFIED = ("6.0.",)  # mlcommons-loadgen releases whose struct the tests checked against the binding's
SHT_SYMTAB = 2
SYMBOL = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("section", "<u2"),
                   ("value", "<u8"), ("size", "<u8")])  # an ELF64 symbol table entry


class Responses(Protocol):
    """One instance's LoadGen responses: hold the ids of a batch or a block, put predictions, send a run of them."""

    def hold(self, ids: Any) -> None:
        """Make responses 0 .. len(ids) - 1 carry these sample ids (a list, or an array)."""

    def put(self, start: int, predictions: np.ndarray, indices: Any) -> None:
        """Point responses start .. start + len(predictions) - 1 at these answers (of the samples at indices)."""

    def send(self, start: int, count: int) -> None:
        """Complete responses start .. start + count - 1 with one QuerySamplesComplete call."""


def responses(size: int, kind: str) -> Responses:
    """Return int64 responses for batches of up to size samples (see `carrier`)."""
    return carrier(size, kind)


def carrier(size: int, kind: str) -> ArrayResponses | ObjectResponses:
    """Return the responses that reach LoadGen: its C entry point on an array (auto, where found), else the binding."""
    if kind == "auto" and c_entry()[0] is not None:
        return ArrayResponses(size)
    return ObjectResponses(size)


def describe(kind: str) -> str:
    """Return how responses of this kind reach LoadGen: `c`, or `python` and why."""
    if kind == "python":
        return "python (sut_completion=python)"
    entry, why = c_entry()
    return "c" if entry is not None else f"python ({why})"


class Slots:
    """The int64 output buffer both kinds of responses point into: response i at slot i."""

    buffer: np.ndarray

    def put(self, start: int, predictions: np.ndarray, indices: Any = None) -> None:
        """Write the predictions (int64 classes) into their responses' slots."""
        self.buffer[start:start + len(predictions)] = predictions


class ArrayResponses(Slots):
    """Responses as an array of LoadGen's QuerySampleResponse structs, sent through its C entry point."""

    def __init__(self, size: int) -> None:
        self.complete = c_entry()[0]
        self.grow(size)

    def grow(self, size: int) -> None:
        """Hold room for size samples."""
        self.buffer = np.zeros(size, dtype=np.int64)
        self.array = np.zeros(size, dtype=response_dtype())
        self.array["data"] = self.buffer.ctypes.data + self.buffer.itemsize * np.arange(size, dtype=np.uint64)
        self.array["size"] = self.buffer.itemsize
        self.ids = self.array["id"]
        self.address, self.stride = self.array.ctypes.data, self.array.itemsize

    def hold(self, ids: Any) -> None:
        """Write the ids into the first responses."""
        count = len(ids)
        if count > len(self.array):
            self.grow(count)
        self.ids[:count] = ids

    def point(self, start: int, addresses: np.ndarray, sizes: np.ndarray) -> None:
        """Point responses start .. at data of these addresses and sizes in bytes (instead of their slots)."""
        end = start + len(sizes)
        self.array["data"][start:end] = addresses
        self.array["size"][start:end] = sizes

    def send(self, start: int, count: int) -> None:
        """Complete a run of responses: LoadGen's C function on that part of the array."""
        self.complete(self.address + start * self.stride, count)


class ObjectResponses(Slots):
    """Responses as QuerySampleResponse objects, made once and reused, sent through the Python binding."""

    def __init__(self, size: int) -> None:
        self.grow(size)

    def grow(self, size: int) -> None:
        """Hold room for size samples."""
        self.buffer = np.zeros(size, dtype=np.int64)
        address, width = self.buffer.ctypes.data, self.buffer.itemsize
        self.slots = [lg.QuerySampleResponse(0, address + i * width, width) for i in range(size)]

    def hold(self, ids: Any) -> None:
        """Set the ids of the first responses."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()  # the binding takes Python ints twice as fast as numpy's
        if len(ids) > len(self.slots):
            self.grow(len(ids))
        for slot, sample in zip(self.slots, ids, strict=False):
            slot.id = sample

    def point(self, start: int, addresses: np.ndarray, sizes: np.ndarray) -> None:
        """Point responses start .. at data of these addresses and sizes in bytes (instead of their slots)."""
        for slot, address, size in zip(self.slots[start:], addresses.tolist(), sizes.tolist(), strict=False):
            slot.data, slot.size = address, size

    def send(self, start: int, count: int) -> None:
        """Complete a run of responses through the binding."""
        lg.QuerySamplesComplete(self.slots[start:start + count])


class SizedResponses:
    """Responses of any size per sample: the task encodes a batch's answers into one array, each points into it.

    `encode(answers, indices)` returns (data, byte offset of each sample's part, its size in
    bytes); the data is kept until the next batch's, past the QuerySamplesComplete call,
    during which LoadGen copies what it keeps.
    """

    def __init__(self, carrier: ArrayResponses | ObjectResponses, encode: Any) -> None:
        self.carrier, self.encode = carrier, encode
        self.data: np.ndarray = np.empty(0, dtype=np.uint8)

    def hold(self, ids: Any) -> None:
        """Make the first responses carry these sample ids."""
        self.carrier.hold(ids)

    def put(self, start: int, answers: np.ndarray, indices: Any) -> None:
        """Encode the answers of the samples at indices and point their responses at them."""
        self.data, offsets, sizes = self.encode(answers, indices)
        self.carrier.point(start, self.data.ctypes.data + np.asarray(offsets, dtype=np.uint64),
                           np.asarray(sizes, dtype=np.uint64))

    def send(self, start: int, count: int) -> None:
        """Complete a run of responses."""
        self.carrier.send(start, count)


def response_dtype() -> np.dtype:
    """Return the numpy layout of this LoadGen's QuerySampleResponse: its fields in order, 8 bytes each."""
    known = [name for name in FIELDS if hasattr(lg.QuerySampleResponse, name)]
    return np.dtype([(name, "<i8" if name == "n_tokens" else "<u8") for name in known])


@functools.cache
def c_entry() -> tuple[Any, str]:
    """Return LoadGen's C QuerySamplesComplete(responses, count) as a ctypes function, or None and why not."""
    fields = {name for name in dir(lg.QuerySampleResponse) if not name.startswith("_")}
    if fields not in ({*FIELDS[:3]}, {*FIELDS}):
        return None, f"QuerySampleResponse has fields {sorted(fields)}, a layout axq does not know"
    version = installed_version()
    if not version.startswith(VERIFIED):
        return None, f"mlcommons-loadgen {version}: axq has not checked its QuerySampleResponse layout"
    path = lg.__file__
    try:
        found = symbols(path, (ANCHOR, C_SYMBOL))
    except (OSError, ValueError) as error:
        return None, f"cannot read {os.path.basename(path)}'s symbols: {error}"
    if C_SYMBOL not in found or ANCHOR not in found:
        return None, f"{os.path.basename(path)} does not name LoadGen's C QuerySamplesComplete"
    module = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_NOW)  # the loaded module itself
    anchor = ctypes.cast(getattr(module, ANCHOR.decode()), ctypes.c_void_p).value
    assert anchor is not None
    address = anchor - found[ANCHOR] + found[C_SYMBOL]
    return ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_size_t)(address), ""


def installed_version() -> str:
    """Return the installed mlcommons-loadgen's version, from its wheel's dist-info folder beside the module.

    (importlib.metadata takes ~35 ms to import and search; this is a directory listing.)
    """
    found = sorted(Path(lg.__file__).parent.glob("mlcommons_loadgen-*.dist-info"))
    return found[-1].name.removeprefix("mlcommons_loadgen-").removesuffix(".dist-info") if found else "unknown"


def symbols(path: str, names: tuple[bytes, ...]) -> dict[bytes, int]:
    """Return the address in the file of each named function of an ELF64 little-endian file's symbol table.

    Read directly (a few ms for LoadGen's 3,400 symbols) rather than with pyelftools (110 ms),
    since every LoadGen run's process looks this up before it measures.
    """
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("not a 64-bit little-endian ELF file")
        offset, = struct.unpack_from("<Q", data, 0x28)
        size, count = struct.unpack_from("<HH", data, 0x3A)
        headers = [struct.unpack_from("<IIQQQQIIQQ", data, offset + i * size) for i in range(count)]
        table = next((h for h in headers if h[1] == SHT_SYMTAB), None)
        if table is None:
            raise ValueError("no symbol table (a stripped build)")
        entries = np.frombuffer(data[table[4]:table[4] + table[5]], dtype=SYMBOL)
        strings = data[headers[table[6]][4]:headers[table[6]][4] + headers[table[6]][5]]
    functions = entries[(entries["info"] & 0xF) == 2]  # STT_FUNC
    found = {}
    for name in names:
        starts = [match.start() for match in re.finditer(re.escape(name) + b"\0", strings)]
        chosen = functions[np.isin(functions["name"], starts)]
        if len(chosen) == 1:
            found[name] = int(chosen["value"][0])
    return found
