"""Reads and writes safetensors files with numpy only (no torch, no safetensors package)."""

import json
import struct
from pathlib import Path

import numpy as np

# safetensors dtype names <-> numpy dtypes (little-endian, as the format requires).
_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dt: name for name, dt in _DTYPES.items()}

# A header larger than this is a corrupt file, not a model (the reference crate's limit).
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(Exception):
    """A file that is not valid safetensors; the message names the file and the entry."""


def save(path, tensors, metadata=None, sort_keys=False):
    """Writes `tensors` (name -> array) to `path`.

    Entries are laid out in insertion order, or alphabetically with
    `sort_keys` (what the Rust/Python writers do); readers accept both.
    """
    items = sorted(tensors.items()) if sort_keys else list(tensors.items())
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    blobs = []
    for name, value in items:
        arr = np.asarray(value)
        dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
        if dt not in _NAMES:
            raise SafetensorsError(f"{path}: tensor '{name}' has dtype {arr.dtype}, which safetensors cannot hold")
        blob = np.ascontiguousarray(arr, dtype=dt).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # pad so that the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def load(path, with_metadata=False):
    """Reads `path` into a dict name -> numpy array, in the file's header order.

    Every entry is checked: known dtype, offsets inside the data and consistent
    with the shape, no overlap, no gaps. With `with_metadata`, returns
    (tensors, metadata).
    """
    raw = Path(path).read_bytes()
    if len(raw) < 8:
        raise SafetensorsError(f"{path}: {len(raw)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > _MAX_HEADER or 8 + n > len(raw):
        raise SafetensorsError(f"{path}: header length {n} does not fit in a file of {len(raw)} bytes")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    spans = []
    for name, entry in header.items():
        where = f"{path}: tensor '{name}'"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise SafetensorsError(f"{where}: an entry needs exactly dtype, shape and data_offsets")
        dt = _DTYPES.get(entry["dtype"])
        if dt is None:
            raise SafetensorsError(f"{where}: unknown dtype '{entry['dtype']}'")
        shape = entry["shape"]
        begin, end = entry["data_offsets"]
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError(f"{where}: bad shape {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= begin <= end <= len(data)) or end - begin != count * dt.itemsize:
            raise SafetensorsError(
                f"{where}: data_offsets [{begin}, {end}] do not hold {shape} {entry['dtype']} "
                f"in {len(data)} data bytes")
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).copy()
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise SafetensorsError(f"{path}: tensor '{name}' starts at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        raise SafetensorsError(f"{path}: {len(data) - pos} trailing bytes after the last tensor")
    return (tensors, metadata) if with_metadata else tensors
