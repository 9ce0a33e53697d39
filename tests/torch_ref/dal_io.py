"""dal_io.py — the file formats dal exchanges with PyTorch, in pure Python.

safetensors: an 8-byte little-endian header length, a JSON header
  {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
  padded with spaces to a multiple of 8 bytes, then the raw little-endian
  data of every tensor back to back (offsets are relative to the data start).
  Only the dtypes dal uses are supported: F32 and I32.
.npy: numpy's own np.save / np.load.

Run with /usr/bin/python3 (numpy lives there).
"""
import json
import struct

import numpy as np

_DTYPES = {"F32": np.dtype("<f4"), "I32": np.dtype("<i4")}


def _code_of(dtype):
    for code, dt in _DTYPES.items():
        if np.dtype(dtype) == dt.newbyteorder("="):
            return code
    raise ValueError("safetensors: unsupported dtype %s (dal uses F32 and I32)" % dtype)


def save_safetensors(path, tensors):
    """Writes 'tensors' (a mapping name -> array-like, torch tensors included)
    to 'path' in safetensors format, in the mapping's order."""
    header = {}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        code = _code_of(arr.dtype)
        raw = np.ascontiguousarray(arr, dtype=_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path):
    """Reads a safetensors file into a dict name -> numpy array (in header
    order). Raises ValueError naming the file and the problem if it is
    malformed."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors header" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        code = info["dtype"]
        if code not in _DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, code))
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * 4 or end > len(body):
            raise ValueError("%s: tensor %s: offsets [%d, %d] do not fit shape %s"
                             % (path, name, begin, end, list(shape)))
        out[name] = np.frombuffer(body[begin:end], dtype=_DTYPES[code]).reshape(shape).copy()
    return out


def save_npy(path, array):
    """Writes one array as .npy (torch tensors are converted)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    np.save(path, np.asarray(array))


def load_npy(path):
    return np.load(path)


def safetensors_layout(path):
    """(metadata, data_end, file_size) of a safetensors file: its
    "__metadata__" strings (an empty dict if none), the byte just past the
    last tensor's data, and the size on disk. A complete file has
    data_end == file_size. Raises ValueError naming the file if the header
    cannot be read."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors header" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    end = max((info["data_offsets"][1] for info in header.values()), default=0)
    return meta, 8 + n + end, len(data)
