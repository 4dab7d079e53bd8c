"""load(path): the tensors of a checkpoint file as numpy arrays, without torch.

Formats, told apart by content (the suffix only breaks a tie for .safetensors):

    torch.save    a zip archive: <name>/data.pkl (a pickle of the state_dict), the raw
                  storages <name>/data/<key>, <name>/byteorder ('little' or 'big'; little
                  when absent, as torch.load assumes). The legacy pre-zip format is refused.
    .npz          a zip archive of .npy members (numpy.savez, savez_compressed); no pickles,
                  so no object arrays
    .safetensors  an 8-byte little-endian header length, a JSON header {name: {"dtype",
                  "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the
                  data, which the tensors must cover exactly (no gap, no overlap)

The result is an OrderedDict name -> array in the file's order, every array C-contiguous, in
native byte order and owning its memory. dtypes are kept, but bfloat16, which numpy lacks,
becomes float32 (exactly: a bfloat16 is the top half of a float32).

Security model: the file is untrusted. Unpickling can call any importable function, so
data.pkl is read by an Unpickler whose find_class knows only the globals torch.save writes
for a state_dict (GLOBALS below) and answers them with cconv's own stand-ins: torch is never
imported, and any other global (os.system, builtins.eval, ...) is refused by name when the
pickle first mentions it, before it can be called. Every size and offset read from a file is
checked against the bytes that are really there before an array is allocated or viewed, so a
header cannot make load allocate more than the file holds (a compressed .npz member may
still inflate to the size its zip entry states, as numpy.load would). Anything wrong raises a
ValueError naming the file.
"""
import io
import json
import math
import os
import pickle
import pickletools
import zipfile
from collections import OrderedDict, namedtuple

import numpy as np

__all__ = ["load"]

# Element types, as numpy dtype codes without byte order; "bf16" is bfloat16.
TORCH_STORAGES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "bf16",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "b1",
}
SAFETENSORS_DTYPES = {
    "F64": "f8", "F32": "f4", "F16": "f2", "BF16": "bf16", "I64": "i8", "I32": "i4",
    "I16": "i2", "I8": "i1", "U64": "u8", "U32": "u4", "U16": "u2", "U8": "u1", "BOOL": "b1",
}


class _Error(ValueError):
    """What is wrong with the file, in words; load() adds the file's name."""


def load(path):
    """The tensors of a torch.save state_dict, .npz or .safetensors file: an OrderedDict
    name -> numpy array (C-contiguous, native byte order, owning its memory)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"load(): expected path to be a str or os.PathLike, got "
                        f"{type(path).__name__}")
    path = os.fsdecode(path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        try:
            return _read(file, size, path)
        except _Error as error:
            raise ValueError(f"load(): {path}: {error}") from None
        # The bytes are untrusted: whatever zipfile, json, numpy or pickle raise on them
        # means the file is not a readable checkpoint (the cause stays chained).
        except Exception as error:
            raise ValueError(f"load(): {path}: cannot be read as a checkpoint "
                             f"({type(error).__name__}: {error})") from error


def _read(file, size, path):
    """Pick the reader by the file's first bytes."""
    head = file.read(9)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        try:
            archive = zipfile.ZipFile(file)
        except zipfile.BadZipFile as error:
            raise _Error(f"a truncated or corrupt zip archive ({error})") from None
        with archive:
            return _read_zip(archive, size)
    if head[8:9] == b"{" or path.endswith(".safetensors"):
        return _read_safetensors(file, size)
    if head[:1] == b"\x80":
        raise _Error("a bare pickle (torch.save's legacy format, or pickle.dump) is not read: "
                     "save with torch.save's default zip format")
    raise _Error("not a checkpoint: expected a torch.save zip archive, an .npz or a "
                 ".safetensors file")


def _read_zip(archive, size):
    """A torch.save archive (one <name>/data.pkl) or an .npz (only .npy members)."""
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) == 1:
        return _read_torch(archive, pickles[0][:-len("/data.pkl")], size)
    if not pickles and all(n.endswith(".npy") for n in names):
        return _read_npz(archive, size)
    raise _Error(f"a zip archive that is neither a torch.save checkpoint (one <name>/data.pkl, "
                 f"found {len(pickles)}) nor an .npz (.npy members only)")


def _info(archive, name, size):
    """A member's zip entry, checked to claim no more bytes than the whole file (size) has:
    zipfile allocates what an entry claims when reading it."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise _Error(f"the archive has no member {name!r}") from None
    if info.compress_size > size:
        raise _Error(f"member {name!r} claims more bytes than the whole file has ({size})")
    return info


def _member(archive, name, size, expected=None):
    """The bytes of a stored (uncompressed) member, checked to be `expected` long if given,
    before they are read."""
    info = _info(archive, name, size)
    if info.compress_type != zipfile.ZIP_STORED:
        raise _Error(f"member {name!r} is compressed (torch.save stores members as they are)")
    if info.compress_size != info.file_size:
        raise _Error(f"member {name!r} is corrupt: stored in {info.compress_size} bytes, of "
                     f"{info.file_size}")
    if expected is not None and info.file_size != expected:
        raise _Error(f"member {name!r} has {info.file_size} bytes, expected {expected}")
    return archive.read(name)


def _read_torch(archive, prefix, size):
    """torch.save's archive: data.pkl unpickled with _Unpickler, checked to be a state_dict."""
    order = "<"
    if f"{prefix}/byteorder" in archive.namelist():
        mark = _member(archive, f"{prefix}/byteorder", size)
        if mark not in (b"little", b"big"):
            raise _Error(f"{prefix}/byteorder is {mark[:20]!r}, expected b'little' or b'big'")
        order = "<" if mark == b"little" else ">"
    data = _member(archive, f"{prefix}/data.pkl", size)
    try:
        # A pass over the opcodes first: a truncated stream, or a length field larger than
        # what follows, fails here without the allocation the unpickler would make for it.
        for _ in pickletools.genops(data):
            pass
    except ValueError as error:
        raise _Error(f"{prefix}/data.pkl is not a valid pickle: {error}") from None
    state = _Unpickler(io.BytesIO(data), archive, prefix, order, size).load()
    if not isinstance(state, dict):
        raise _Error(f"data.pkl holds a {type(state).__name__}, not a state_dict (a dict of "
                     f"tensors)")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise _Error(f"data.pkl is not a state_dict of tensors: entry {name!r} is a "
                         f"{type(value).__name__} (save model.state_dict() alone)")
    return OrderedDict(state)


# Every object the unpickler hands out from this module is immutable (a tuple), so that a
# BUILD opcode in the file cannot change it: not a storage's size, and not a stand-in kept
# in GLOBALS for the next file (a Python function's __defaults__, say, can be set).
class _StorageType(namedtuple("_StorageType", "kind code")):
    """Stand-in for torch.<kind>Storage in a persistent id: which element type it holds."""
    __slots__ = ()


class _Storage(namedtuple("_Storage", "key type numel array")):
    """A storage read from data/<key>: `array`, its elements as stored (1-D, read-only)."""
    __slots__ = ()


class _StandIn(namedtuple("_StandIn", "function")):
    """An allowed function of torch's, answered by cconv's `function`."""
    __slots__ = ()

    def __call__(self, *args):
        return self.function(*args)


def _is_count(value):
    return type(value) is int and value >= 0


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
    """Stand-in for torch._utils._rebuild_tensor_v2: a copy of the strided view of storage,
    after checking that the view lies inside the storage."""
    if not isinstance(storage, _Storage):
        raise _Error(f"a tensor is rebuilt from a {type(storage).__name__}, not a storage")
    if not (_is_count(storage_offset) and type(size) is tuple and type(stride) is tuple
            and len(size) == len(stride) and all(map(_is_count, size + stride))):
        raise _Error(f"a tensor of storage {storage.key!r} has offset {storage_offset!r}, size "
                     f"{size!r}, stride {stride!r}: expected non-negative integers")
    numel = math.prod(size)
    # A dimension of length 1 never steps, and an empty tensor reads nothing: those strides
    # are irrelevant, and may be any size.
    stride = tuple(s if n > 1 and numel else 0 for n, s in zip(size, stride))
    extent = 0 if numel == 0 else 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if storage_offset + extent > storage.numel:
        raise _Error(f"a tensor (offset {storage_offset}, size {size}, stride {stride}) "
                     f"reaches element {storage_offset + extent} of storage {storage.key!r}, "
                     f"which has {storage.numel}")
    if numel > storage.numel:
        # Only a zero stride gets here; its copy could be of any size.
        raise _Error(f"a tensor of size {size} repeats the {storage.numel} elements of "
                     f"storage {storage.key!r} (a zero stride): not read")
    raw = storage.array[storage_offset:storage_offset + extent]
    view = np.lib.stride_tricks.as_strided(raw, size, [s * raw.itemsize for s in stride],
                                           writeable=False)
    return _owned(view, storage.type.code)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    """Stand-in for torch._utils._rebuild_parameter: the data (rebuilt already)."""
    return data


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """Stand-in for torch._utils._rebuild_parameter_with_state: the data; Python attributes
    of the Parameter are dropped."""
    return data


# Everything torch.save writes for a state_dict, and cconv's stand-in for each.
GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _StandIn(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_parameter"): _StandIn(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _StandIn(_rebuild_parameter_with_state),
    **{("torch", kind): _StorageType(kind, code) for kind, code in TORCH_STORAGES.items()},
}


class _Unpickler(pickle.Unpickler):
    """data.pkl's reader: GLOBALS only, and storages read from the archive on first use."""

    def __init__(self, file, archive, prefix, order, size):
        super().__init__(file)
        self.archive, self.prefix, self.order, self.size = archive, prefix, order, size
        self.storages = {}

    def find_class(self, module, name):
        try:
            return GLOBALS[module, name]
        except KeyError:
            raise _Error(f"data.pkl refers to the global {module}.{name}, which a state_dict "
                         f"does not use: refused, nothing was run (allowed: "
                         f"collections.OrderedDict, torch's tensor rebuilders and storage "
                         f"types)") from None

    def persistent_load(self, pid):
        """A ('storage', storage type, key, location, numel) record: that storage."""
        if not (type(pid) is tuple and len(pid) == 5 and isinstance(pid[0], str)
                and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and type(pid[2]) is str
                and _is_count(pid[4])):
            raise _Error(f"data.pkl has the persistent id {str(pid)[:200]}, expected "
                         f"('storage', storage type, key, location, numel)")
        _, kind, key, _, numel = pid
        if key not in self.storages:
            stored = _stored(kind.code, self.order)
            data = _member(self.archive, f"{self.prefix}/data/{key}", self.size,
                           expected=numel * stored.itemsize)
            self.storages[key] = _Storage(key, kind, numel, np.frombuffer(data, stored))
        storage = self.storages[key]
        if (storage.type, storage.numel) != (kind, numel):
            raise _Error(f"storage {key!r} is named as {storage.numel} x {storage.type.kind} "
                         f"and as {numel} x {kind.kind}")
        return storage


def _stored(code, order):
    """The numpy dtype of the elements as they lie in the file (order '<' or '>')."""
    return np.dtype(order + {"bf16": "u2", "b1": "u1"}.get(code, code))


def _owned(array, code):
    """A new C-contiguous array of `array`'s elements (stored as _stored(code, any order))
    in native order; bytes of bools become True where nonzero."""
    if code == "bf16":
        out = np.empty(array.shape, np.float32)
        bits = out.view(np.uint32)
        bits[...] = array
        bits <<= 16
        return out
    return np.array(array, dtype=np.dtype(code), order="C")


def _read_npz(archive, size):
    """The .npy members, each checked (numbers only, so no pickled object arrays; data as
    long as its header says) before its data is read."""
    arrays = OrderedDict()
    for name in archive.namelist():
        info = _info(archive, name, size)
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise _Error(f"member {name!r} is .npy version {version}, expected 1.0 or 2.0")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran_order, dtype = read_header(member)
            if dtype.kind not in "biufc":
                raise _Error(f"member {name!r} holds {dtype} elements, not numbers (object "
                             f"arrays would need pickle, which load does not run)")
            count = math.prod(shape)
            if info.file_size - member.tell() != count * dtype.itemsize:
                raise _Error(f"member {name!r} has {info.file_size - member.tell()} bytes of "
                             f"data, but a {shape} {dtype} array needs {count * dtype.itemsize}")
            data = member.read()
        array = np.frombuffer(data, dtype, count).reshape(shape, order="F" if fortran_order
                                                         else "C")
        arrays[name[:-len(".npy")]] = _owned(array, dtype.newbyteorder("="))
    return arrays


def _read_safetensors(file, size):
    """Each tensor of the header, read from its data_offsets."""
    start, tensors = _safetensors_header(file, size)
    arrays = OrderedDict()
    for name, (code, shape, begin, end) in tensors.items():
        file.seek(start + begin)
        data = file.read(end - begin)
        if len(data) != end - begin:
            raise _Error(f"tensor {name!r}: the file ends inside its data")
        arrays[name] = _owned(np.frombuffer(data, _stored(code, "<")).reshape(shape), code)
    return arrays


def _safetensors_header(file, size):
    """(where the data starts, {name: (code, shape, begin, end)}), checked: the header lies
    in the file, and the tensors cover the data exactly."""
    if size < 8:
        raise _Error(f"{size} bytes: too short for a safetensors file")
    file.seek(0)
    length = int.from_bytes(file.read(8), "little")
    if length > size - 8:
        raise _Error(f"the safetensors header length ({length}) runs past the end of the "
                     f"file ({size} bytes)")
    try:
        header = json.loads(file.read(length), object_pairs_hook=_unique_keys)
    except _Error:
        raise
    except ValueError as error:
        raise _Error(f"the safetensors header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise _Error(f"the safetensors header is a JSON {type(header).__name__}, expected an "
                     f"object")
    header.pop("__metadata__", None)
    tensors = OrderedDict((name, _safetensors_entry(name, entry))
                          for name, entry in header.items())
    end = 0
    for name, (_, _, begin, stop) in sorted(tensors.items(), key=lambda item: item[1][2:]):
        if begin != end:
            raise _Error(f"tensor {name!r} starts at byte {begin} of the data, expected {end} "
                         f"(tensors overlap or leave a gap)")
        end = stop
    if end != size - 8 - length:
        raise _Error(f"the tensors cover {end} bytes, but the data has {size - 8 - length}")
    return 8 + length, tensors


def _unique_keys(pairs):
    """json's object hook: a dict of the pairs, refusing a repeated name."""
    found = {}
    for name, value in pairs:
        if name in found:
            raise _Error(f"the safetensors header has {name!r} twice")
        found[name] = value
    return found


def _safetensors_entry(name, entry):
    """(code, shape, begin, end) of a header entry, checked to be well formed."""
    if not (isinstance(entry, dict) and set(entry) == {"dtype", "shape", "data_offsets"}
            and isinstance(entry["dtype"], str) and entry["dtype"] in SAFETENSORS_DTYPES
            and isinstance(entry["shape"], list) and all(map(_is_count, entry["shape"]))
            and isinstance(entry["data_offsets"], list) and len(entry["data_offsets"]) == 2
            and all(map(_is_count, entry["data_offsets"]))):
        raise _Error(f"tensor {name!r}: expected {{'dtype': one of "
                     f"{list(SAFETENSORS_DTYPES)}, 'shape': [sizes], 'data_offsets': "
                     f"[begin, end]}}, got {str(entry)[:200]}")
    code, shape, (begin, end) = (SAFETENSORS_DTYPES[entry["dtype"]], tuple(entry["shape"]),
                                 entry["data_offsets"])
    nbytes = math.prod(shape) * _stored(code, "<").itemsize
    if end - begin != nbytes:
        raise _Error(f"tensor {name!r}: data_offsets [{begin}, {end}] hold {end - begin} "
                     f"bytes, but shape {list(shape)} of {entry['dtype']} needs {nbytes}")
    return code, shape, begin, end
