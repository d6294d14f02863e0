"""Minimal safetensors reader and writer (numpy + json only; the `safetensors`
package is not available on Debian 12).

Format: 8-byte little-endian header length n, n bytes of JSON
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian tensor bytes. The writer is deterministic: tensors
are laid out in sorted name order and the header is padded with spaces to a
multiple of 8 bytes, so the same tensors give the same bytes."""
import json
import struct

import numpy as np

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(v).newbyteorder("<"): k for k, v in _DTYPES.items()}


def read(path):
    """Returns ({name: numpy array (read-only view)}, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}': unsupported dtype {info['dtype']}")
        dt = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * dt.itemsize or 8 + n + end > len(data):
            raise ValueError(f"{path}: tensor '{name}': offsets {begin}..{end} do not fit shape {info['shape']}")
        out[name] = np.frombuffer(data, dtype=dt, count=count, offset=8 + n + begin).reshape(info["shape"])
    return out, meta


def write(path, tensors, metadata=None):
    """tensors: {name: numpy array}; metadata: {str: str} or None."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        # np.ascontiguousarray would turn a 0-dim tensor (temp) into shape [1].
        a = np.asarray(tensors[name])
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        dt = a.dtype.newbyteorder("<")
        if dt not in _NAMES:
            raise ValueError(f"tensor '{name}': unsupported numpy dtype {a.dtype}")
        raw = a.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
