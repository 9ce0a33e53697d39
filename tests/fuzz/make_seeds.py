#!/usr/bin/python3
"""make_seeds.py — the fuzz targets' first seeds, from the project's own files
(models/*.dal, tests/fixtures) and small generated ones, into
tests/fuzz/NAME/seeds/. `make fuzz` starts from tests/fuzz/NAME/corpus/ (the
minimised corpus, committed); these seeds are where that corpus began.

  python3 tests/fuzz/make_seeds.py
"""
import io, json, os, re, struct, zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz")


def put(target, name, data):
    d = os.path.join(OUT, target, "seeds")
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def strip_comments(text):
    lines = [re.sub(r"\s*#.*$", "", l).rstrip() for l in text.splitlines()]
    return "\n".join(l for l in lines if l) + "\n"


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


# ---- .dal: the models with nn.dal as the imported file, small programs ----
nn = strip_comments(read("models/nn.dal"))
for m in ["classifier", "dvae", "gpt"]:
    put("dal", m + ".dal", strip_comments(read("models/%s.dal" % m)) + "\0" + nn)
put("dal", "ops.dal", strip_comments(read("tests/fixtures/ops.dal")))
put("dal", "small.dal", """config tiny { batch = 2; d = 4 }
import "nn.dal"
def layer(x) {
  param w: [d, d] = normal(0.0, 0.02)
  return relu2(x @ w)
}
@train
def step(x: f32[B, d]) -> f32 {
  y = with l0 { layer(x) }
  for i in 0..3 { y = with l[i] { layer(y) } }
  return mean(y * y)
}
\0def relu2(x) { return relu(x) }
""")

# ---- safetensors ----
def safetensors(tensors, meta=None):
    header, buf = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for name, a in tensors:
        raw = a.tobytes()
        header[name] = {"dtype": {"float32": "F32", "int32": "I32"}[str(a.dtype)], "shape": list(a.shape),
                        "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + buf

f32 = lambda *s: np.arange(int(np.prod(s)) if s else 1, dtype=np.float32).reshape(s) * 0.5
put("safetensors", "two.safetensors", safetensors([("a", f32(2, 3)), ("b", np.array([1, -2], dtype=np.int32))],
                                                  {"format": "pt"}))
put("safetensors", "scalar.safetensors", safetensors([("s", np.array(3.5, dtype=np.float32))]))
put("safetensors", "empty.safetensors", safetensors([], {"k": "v"}))
put("safetensors", "zero.safetensors", safetensors([("z", np.zeros((0, 4), dtype=np.float32)),
                                                    ("r", f32(1, 1, 1, 1, 1, 2))]))

# ---- npy ----
def npy(a, version=None):
    b = io.BytesIO()
    if version:
        np.lib.format.write_array(b, a, version=version)
    else:
        np.save(b, a)
    return b.getvalue()

for name, a in [("f4", f32(2, 3)), ("f8", np.array([1.5, -2.25], dtype="<f8")), ("f2", np.array([1, 2], dtype="<f2")),
                ("i4", np.array([[1, 2]], dtype="<i4")), ("i8", np.array([7, -8], dtype="<i8")),
                ("i2", np.array([3], dtype="<i2")), ("i1", np.array([-1, 1], dtype="i1")),
                ("u1", np.array([255], dtype="u1")), ("u2", np.array([9], dtype="<u2")),
                ("u4", np.array([9], dtype="<u4")), ("u8", np.array([9], dtype="<u8")),
                ("b1", np.array([True, False])), ("scalar", np.float32(2.0).reshape(())),
                ("rank6", np.zeros((1, 1, 1, 1, 1, 2), dtype="<f4")), ("empty", np.zeros((0, 3), dtype="<f4")),
                ("big_endian", np.array([1, 2], dtype=">i4")), ("fortran", np.asfortranarray(f32(2, 2)))]:
    put("npy", name + ".npy", npy(a))
put("npy", "v2.npy", npy(f32(3), version=(2, 0)))
put("npy", "v3.npy", npy(f32(2), version=(3, 0)))

# ---- BPE tokenizer JSON ----
tok = {"format": "dal-bpe", "version": 1, "vocab": 24, "bytes": [32, 97, 98, 99, 100, 101, 108, 114, 117],
       "merges": [[8, 6], [1, 8], [10, 6], [2, 12], [3, 5]]}
tok_json = json.dumps(tok, separators=(",", ":"))
put("bpe", "small.json", tok_json)
put("bpe", "novocab.json", json.dumps({"format": "dal-bpe", "version": 1, "bytes": [97], "merges": [[1, 1], [2, 2]]}))
put("bpe", "empty.json", json.dumps({"format": "dal-bpe", "version": 1, "bytes": [], "merges": []}))

# ---- folder dataset: captions.tsv NUL image ----
def png(w, h, colour=True):
    ch = 3 if colour else 1
    raw = b"".join(b"\0" + bytes((x * 31 + y * 17 + c * 5) & 255 for x in range(w) for c in range(ch))
                   for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if colour else 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

def bmp(w, h):
    row = (w * 3 + 3) & ~3
    pix = b"".join(bytes((x * 40 + y) & 255 for x in range(w) for _ in range(3)).ljust(row, b"\0") for y in range(h))
    return (b"BM" + struct.pack("<IHHI", 54 + len(pix), 0, 0, 54) +
            struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pix), 2835, 2835, 0, 0) + pix)

put("folder", "png.bin", b"a.png\ta red circle\n# a comment\n\na.png\ta blue square\n\0" + png(8, 8))
put("folder", "grey.bin", b"a.png\tgrey\r\n\0" + png(12, 5, colour=False))
put("folder", "bmp.bin", b"a.png\ta bitmap\n\0" + bmp(9, 9))
put("folder", "ppm.bin", b"a.png\tnetpbm\n\0" + b"P6\n4 4\n255\n" + bytes(range(48)))
put("folder", "missing.bin", b"b.png\tno such file\n\0")

# ---- Fashion-MNIST idx: 2-byte labels length, labels file, images file ----
labels = struct.pack(">II", 0x801, 3) + bytes([0, 9, 4])
images = struct.pack(">IIII", 0x803, 3, 28, 28) + bytes((i * 7) & 255 for i in range(3 * 28 * 28))
put("fashion", "three.bin", struct.pack("<H", len(labels)) + labels + images)
labels1 = struct.pack(">II", 0x801, 1) + bytes([2])
images1 = struct.pack(">IIII", 0x803, 1, 28, 28) + bytes(28 * 28)
put("fashion", "one.bin", struct.pack("<H", len(labels1)) + labels1 + images1)

# ---- model files: a checkpoint (with EMA and tokenizer) and an EMA model file ----
w, ow = np.array([0.5, -1], dtype=np.float32), np.array([0, 0.25], dtype=np.float32)
meta = {"format": "pt", "dal.model": "m.dal", "dal.config": "tiny", "dal.step": "3", "dal.seed": "7",
        "dal.steps": "10", "dal.source": "/x/m.dal", "dal.source_hash": "fnv1a64:0123456789abcdef",
        "dal.tokenizer": tok_json, "dal.init": "vae=a.safetensors", "dal.ema": "0.999"}
put("model", "checkpoint.safetensors", safetensors([("w", w), ("opt.w", ow), ("ema.w", w)], meta))
meta_ema = dict(meta, **{"dal.params": "ema"})
put("model", "ema_model.safetensors", safetensors([("w", w), ("opt.w", ow)], meta_ema))
plain = {"dal.model": "m.dal", "dal.config": "tiny", "dal.step": "0", "dal.seed": "1"}
put("model", "plain.safetensors", safetensors([("w", w), ("opt.w", ow)], plain))
