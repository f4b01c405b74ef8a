"""Messages between mutually distrusting processes: a JSON header plus raw NumPy arrays, never a pickle.

Unpickling runs code chosen by the sender, so a process that unpickles what an attacker sends can be made to do
anything (open itself a fresh query budget, say). Every message that crosses from the attacker's side (queries to
the oracle's server, attack results to the campaign) is therefore this plain format, decoded by ``json`` and
``numpy.frombuffer`` with an allow-list of dtypes:

    <u32 little-endian: header length> <header: UTF-8 JSON> <array 0 bytes> <array 1 bytes> ...

The header is ``{"body": <any JSON value>, "arrays": [{"dtype": "<f4", "shape": [P, T]}, ...]}``.
"""

from __future__ import annotations

import json
import struct

import numpy as np

ALLOWED_DTYPES = ("<f4", "<f8", "<i8")
_LENGTH = struct.Struct("<I")


class WireError(ValueError):
    """A message that does not follow the format (the sender is faulty or hostile)."""


def pack(body, *arrays: np.ndarray) -> bytes:
    """Encode a JSON-ready ``body`` and arrays (dtypes of ``ALLOWED_DTYPES``) into one message."""
    parts, specs = [], []
    for array in arrays:
        array = np.ascontiguousarray(array)
        if array.dtype.str not in ALLOWED_DTYPES:
            raise WireError(f"dtype {array.dtype} cannot be sent (allowed: {', '.join(ALLOWED_DTYPES)})")
        specs.append({"dtype": array.dtype.str, "shape": list(array.shape)})
        parts.append(array.tobytes())
    try:
        header = json.dumps({"body": body, "arrays": specs}, allow_nan=True).encode("utf-8")
    except TypeError as error:
        raise WireError(f"the message holds something that is not plain data: {error}") from error
    return _LENGTH.pack(len(header)) + header + b"".join(parts)


def unpack(message: bytes) -> tuple[object, list[np.ndarray]]:
    """Decode ``pack``'s output; raises ``WireError`` on anything else (no code runs, whatever the bytes)."""
    if not isinstance(message, (bytes, bytearray)) or len(message) < _LENGTH.size:
        raise WireError("message too short")
    (length,) = _LENGTH.unpack_from(message)
    end = _LENGTH.size + length
    if end > len(message):
        raise WireError("message header runs past its end")
    try:
        header = json.loads(bytes(message[_LENGTH.size:end]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WireError(f"message header is not JSON: {error}") from error
    if not isinstance(header, dict) or set(header) != {"body", "arrays"} or not isinstance(header["arrays"], list):
        raise WireError("message header must be {body, arrays}")
    arrays, offset = [], end
    for spec in header["arrays"]:
        if not isinstance(spec, dict) or spec.get("dtype") not in ALLOWED_DTYPES:
            raise WireError(f"array spec {spec!r} is not allowed")
        shape = spec.get("shape")
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                  for n in shape):
            raise WireError(f"array shape {shape!r} is not a list of sizes")
        dtype = np.dtype(spec["dtype"])
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + size > len(message):
            raise WireError("message is shorter than its arrays")
        arrays.append(np.frombuffer(message, dtype, count=size // dtype.itemsize, offset=offset).reshape(shape).copy())
        offset += size
    if offset != len(message):
        raise WireError(f"{len(message) - offset} bytes after the last array")
    return header["body"], arrays
