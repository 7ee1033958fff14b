"""Writes the .npy and .safetensors fixtures read by npy_test.ts and safetensors_test.ts.

Run with any python3 that has numpy: `python3 make_npy_fixtures.py` (from this folder).
The safetensors files are built by hand from the format spec (8-byte little-endian
header length, JSON header, little-endian buffers) because the `safetensors`
package is not installable here; numpy supplies the float16 and bfloat16 bits.
"""
import json
import struct

import numpy as np

np.save("f32_2x3.npy", np.arange(6, dtype="<f4").reshape(2, 3) / 4 - 0.5)
np.save("i32_4.npy", np.array([-2, -1, 0, 2**31 - 1], dtype="<i4"))
np.save("u8_2x2x3.npy", np.arange(12, dtype="u1").reshape(2, 2, 3) * 20)
np.save("f64_3.npy", np.array([np.pi, -1e300, 0.1], dtype="<f8"))
np.save("i64_2.npy", np.array([-(2**40), 7], dtype="<i8"))
np.save("f32_scalar.npy", np.array(1.5, dtype="<f4"))
np.save("f32_0x3.npy", np.zeros((0, 3), dtype="<f4"))
np.save("f64_fortran.npy", np.asfortranarray(np.ones((2, 3), dtype="<f8")))
np.save("f32_bigendian.npy", np.ones(2, dtype=">f4"))
with open("f32_v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.arange(3, dtype="<f4"), version=(2, 0))


def safetensors(tensors, metadata=None):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


values = np.array([1.0, -2.5, 0.333251953125, 65504.0, 1e-4, 3e-6], dtype="<f4")
f16 = values.astype("<f2")
bf16 = (values.view("<u4") >> 16).astype("<u2")  # bfloat16 by truncation of the float32 bits
with open("mixed.safetensors", "wb") as f:
    f.write(safetensors({
        "a.f32": ("F32", (2, 3), values.tobytes()),
        "b.f16": ("F16", (6,), f16.tobytes()),
        "c.bf16": ("BF16", (3, 2), bf16.tobytes()),
        "d.f64": ("F64", (2,), np.array([0.1, -3.0], dtype="<f8").tobytes()),
        "e.i64": ("I64", (2,), np.array([-5, 2**40], dtype="<i8").tobytes()),
        "f.i32": ("I32", (1, 2), np.array([7, -8], dtype="<i4").tobytes()),
        "g.u8": ("U8", (3,), np.array([0, 128, 255], dtype="u1").tobytes()),
    }, {"format": "pt", "note": "fixture"}))
expected = {
    "a.f32": values.tolist(),
    "b.f16": f16.astype("<f4").tolist(),
    "c.bf16": (bf16.astype("<u4") << 16).view("<f4").tolist(),
    "d.f64": [float(np.float32(0.1)), -3.0],
}
with open("mixed.safetensors.json", "w") as f:
    json.dump(expected, f, indent=1)
