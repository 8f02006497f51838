"""A small GGUF v2/v3 reader and v3 writer for test tools (python3 + numpy).

Metadata is kept as an ordered list of KV(key, type, value[, elem]) and tensors as raw bytes with
their ggml type and ne (innermost first), so a file can be rewritten without touching a single
weight byte, whatever its quantization."""
import struct

import numpy as np

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
        U64: "<Q", I64: "<q", F64: "<d"}
_NP = {U8: "<u1", I8: "<i1", U16: "<u2", I16: "<i2", U32: "<u4", I32: "<i4", F32: "<f4",
       BOOL: "<u1", U64: "<u8", I64: "<i8", F64: "<f8"}

# ggml type id -> (elements per block, bytes per block)
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
         9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
         14: (256, 210), 15: (256, 292), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8),
         28: (1, 8), 30: (1, 2)}


class KV:
    def __init__(self, key, typ, value, elem=None):
        self.key, self.typ, self.value, self.elem = key, typ, value, elem

    def __repr__(self):
        v = self.value
        if self.typ == ARR:
            v = f"[{len(v)} x type {self.elem}] {list(v[:6])}{'...' if len(v) > 6 else ''}"
        return f"{self.key} ({self.typ}) = {v}"


class Tensor:
    def __init__(self, name, ne, typ, data):
        self.name, self.ne, self.typ, self.data = name, list(ne), typ, data

    def n_elements(self):
        return int(np.prod(self.ne))


class Gguf:
    def __init__(self, kvs=None, tensors=None, alignment=32):
        self.kvs = list(kvs or [])
        self.tensors = list(tensors or [])
        self.alignment = alignment

    # metadata helpers
    def get(self, key, default=None):
        for kv in self.kvs:
            if kv.key == key:
                return kv.value
        return default

    def kv(self, key):
        for kv in self.kvs:
            if kv.key == key:
                return kv
        return None

    def has(self, key):
        return self.kv(key) is not None

    def set(self, key, typ, value, elem=None):
        kv = self.kv(key)
        if kv is None:
            self.kvs.append(KV(key, typ, value, elem))
        else:
            kv.typ, kv.value, kv.elem = typ, value, elem

    def remove(self, key):
        self.kvs = [kv for kv in self.kvs if kv.key != key]

    def rename(self, old, new):
        kv = self.kv(old)
        if kv is not None:
            self.remove(new)
            kv.key = new

    def tensor(self, name):
        for t in self.tensors:
            if t.name == name:
                return t
        return None


class _Reader:
    def __init__(self, buf):
        self.b, self.p = buf, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("<Q")
        s = bytes(self.b[self.p:self.p + n]).decode("utf-8", errors="surrogateescape")
        self.p += n
        return s

    def value(self, typ):
        if typ == STR:
            return self.string(), None
        if typ == ARR:
            elem, n = self.take("<IQ")
            if elem == STR:
                return [self.string() for _ in range(n)], elem
            a = np.frombuffer(self.b, dtype=_NP[elem], count=n, offset=self.p).copy()
            self.p += a.nbytes
            return a, elem
        v = self.take(_FMT[typ])
        return v, None


def read(path):
    with open(path, "rb") as f:
        buf = f.read()
    r = _Reader(buf)
    if buf[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    r.p = 4
    version, n_t, n_kv = r.take("<IQQ")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version}")
    g = Gguf()
    for _ in range(n_kv):
        key = r.string()
        typ = r.take("<I")
        val, elem = r.value(typ)
        g.kvs.append(KV(key, typ, val, elem))
    g.alignment = int(g.get("general.alignment", 32))
    infos = []
    for _ in range(n_t):
        name = r.string()
        nd = r.take("<I")
        ne = [r.take("<Q") for _ in range(nd)]
        typ, off = r.take("<IQ")
        infos.append((name, ne, typ, off))
    start = (r.p + g.alignment - 1) // g.alignment * g.alignment
    by_off = sorted(o for _, _, _, o in infos)
    for name, ne, typ, off in infos:
        if typ in BLOCK:
            be, bb = BLOCK[typ]
            size = int(np.prod(ne)) // be * bb
        else:  # unknown type: up to the next tensor (or the end of the file)
            later = [o for o in by_off if o > off]
            size = (later[0] if later else len(buf) - start) - off
        g.tensors.append(Tensor(name, ne, typ, bytes(buf[start + off:start + off + size])))
    return g


def _pack_str(s):
    b = s.encode("utf-8", errors="surrogateescape")
    return struct.pack("<Q", len(b)) + b


def _pack(kv):
    if kv.typ == STR:
        return _pack_str(kv.value)
    if kv.typ == ARR:
        head = struct.pack("<IQ", kv.elem, len(kv.value))
        if kv.elem == STR:
            return head + b"".join(_pack_str(s) for s in kv.value)
        return head + np.asarray(kv.value, dtype=_NP[kv.elem]).tobytes()
    return struct.pack(_FMT[kv.typ], kv.value)


def write(path, g):
    a = g.alignment
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(g.tensors), len(g.kvs)))
    for kv in g.kvs:
        out += _pack_str(kv.key) + struct.pack("<I", kv.typ) + _pack(kv)
    off, offs = 0, []
    for t in g.tensors:
        offs.append(off)
        off += len(t.data)
        off += (-off) % a
    for t, o in zip(g.tensors, offs):
        out += _pack_str(t.name) + struct.pack("<I", len(t.ne))
        out += struct.pack("<%dQ" % len(t.ne), *t.ne) + struct.pack("<IQ", t.typ, o)
    out += b"\0" * ((-len(out)) % a)
    for t in g.tensors:
        out += t.data
        out += b"\0" * ((-len(out)) % a)
    with open(path, "wb") as f:
        f.write(out)
