"""cconv.load: torch.save state_dicts (read without torch), .npz and .safetensors files as
numpy arrays; and every malicious or malformed file refused with a ValueError naming it,
without running anything from it.

torch.save files are also written here by hand (a pickle assembled from opcodes, zipped as
torch does), so that the malformed cases run without torch and can hold what torch never
writes."""
import json
import os
import pickle
import pickletools
import re
import subprocess
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from conftest import run_python

import cconv
from cconv import _checkpoint


def check_arrays(loaded, expected, layout=True):
    """loaded equals expected (the same names in the same order, dtypes and values), every
    array C-contiguous, native and (if layout) owning its memory."""
    assert list(loaded) == list(expected)
    for name, want in expected.items():
        got = loaded[name]
        assert got.dtype == want.dtype and got.dtype.isnative, (name, got.dtype, want.dtype)
        assert got.flags.c_contiguous and (got.flags.owndata or not layout), name
        np.testing.assert_array_equal(got, want, err_msg=name)


def refused(path, *words):
    """pytest.raises for load(path): a ValueError naming the file and each of words."""
    return pytest.raises(ValueError, match=".*".join(re.escape(str(w)) for w in [path, *words]))


# ---- torch.save files by hand -------------------------------------------------------------

def push(obj):
    """Pickle opcodes (protocol 2) that push obj."""
    return pickle.dumps(obj, 2)[2:-1]


def global_(module, name):
    return f"c{module}\n{name}\n".encode()


def tensor(key, numel, offset, size, stride, kind="FloatStorage", rebuild="_rebuild_tensor_v2"):
    """Opcodes of torch's tensor: _rebuild_tensor_v2(storage, offset, size, stride, False,
    OrderedDict()), the storage a ('storage', torch.<kind>, key, 'cpu', numel) record."""
    storage = (b"(" + push("storage") + global_("torch", kind) + push(key) + push("cpu")
               + push(numel) + b"tQ")
    return (global_("torch._utils", rebuild) + b"(" + storage + push(offset) + push(size)
            + push(stride) + push(False) + global_("collections", "OrderedDict") + b")RtR")


def state_dict_pickle(tensors):
    """A pickled OrderedDict name -> tensor opcodes."""
    items = b"".join(push(name) + ops + b"s" for name, ops in tensors.items())
    return b"\x80\x02" + global_("collections", "OrderedDict") + b")R" + items + b"."


def write_pt(path, data_pkl, storages=(), byteorder=b"little", prefix="archive"):
    """A zip laid out as torch.save's: data.pkl, byteorder, data/<key> (all stored)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data_pkl)
        if byteorder is not None:
            z.writestr(f"{prefix}/byteorder", byteorder)
        for key, data in dict(storages).items():
            z.writestr(f"{prefix}/data/{key}", data)
        z.writestr(f"{prefix}/version", b"3\n")
    return path


STORAGE = np.arange(12, dtype=np.float32)       # storage '0' of the hand-made files


def good_pt(path):
    """w: STORAGE as (3, 4); t: its transpose; row: its row 1."""
    pkl = state_dict_pickle({"w": tensor("0", 12, 0, (3, 4), (4, 1)),
                             "t": tensor("0", 12, 0, (4, 3), (1, 4)),
                             "row": tensor("0", 12, 4, (4,), (1,))})
    return write_pt(path, pkl, {"0": STORAGE.tobytes()})


def test_a_hand_made_torch_file_loads(tmp_path):
    w = STORAGE.reshape(3, 4)
    loaded = cconv.load(good_pt(tmp_path / "m.pt"))
    assert type(loaded) is OrderedDict
    check_arrays(loaded, {"w": w, "t": w.T, "row": w[1]})


def test_big_endian_storages_are_swapped_to_native(tmp_path):
    values = np.array([1.5, -2.0, 3.25], dtype=np.float64)
    pkl = state_dict_pickle({"x": tensor("0", 3, 0, (3,), (1,), kind="DoubleStorage")})
    path = write_pt(tmp_path / "big.pt", pkl, {"0": values.astype(">f8").tobytes()},
                    byteorder=b"big")
    check_arrays(cconv.load(path), {"x": values})


def test_hand_made_storages_of_every_type(tmp_path):
    bf16 = np.array([1.0, -2.5, 2.0**100], np.float32)
    kinds = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
             "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
             "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}
    tensors, storages, expected = {}, {}, {}
    for i, (kind, dtype) in enumerate(kinds.items()):
        values = np.array([0, 1, 3], dtype)
        tensors[kind] = tensor(str(i), 3, 0, (3,), (1,), kind=kind)
        storages[str(i)], expected[kind] = values.tobytes(), values
    tensors["bf16"] = tensor("bf", 3, 0, (3,), (1,), kind="BFloat16Storage")
    storages["bf"] = (bf16.view(np.uint32) >> 16).astype("<u2").tobytes()
    expected["bf16"] = bf16
    check_arrays(cconv.load(write_pt(tmp_path / "kinds.pt", state_dict_pickle(tensors),
                                     storages)), expected)


# ---- torch.save files by torch, read without it ---------------------------------------------

CHILD = """
import sys
sys.modules["torch"] = None                 # `import torch` fails from here on
import numpy as np
import cconv
state = cconv.load(sys.argv[1])
try:
    import torch
except ImportError:
    pass
else:
    raise SystemExit("torch could be imported")
assert all(a.flags.c_contiguous and a.flags.owndata for a in state.values())
np.savez(sys.argv[2], **state)
print(" ".join(state))
"""


def test_a_torch_model_loads_in_a_python_without_torch(tmp_path, torch):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 5))
    model(torch.randn(2, 3, 8, 8))          # training mode: running stats and the count move
    torch.save(model.state_dict(), tmp_path / "model.pt")
    r = run_python(["-c", CHILD, str(tmp_path / "model.pt"), str(tmp_path / "out.npz")])
    assert r.returncode == 0, r.stderr
    state = model.state_dict()
    assert r.stdout.split() == list(state)
    with np.load(tmp_path / "out.npz") as loaded:
        # (the child checked the layout; arrays read back from an .npz are views)
        check_arrays({k: loaded[k] for k in loaded.files},
                     {k: v.numpy() for k, v in state.items()}, layout=False)
    assert state["1.num_batches_tracked"].dtype == torch.int64


def torch_tensors(torch):
    """Tensors of every storage type torch.save writes for a state_dict, views of one
    storage, a transposed one, a scalar and an empty one."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {"base": base, "row": base[2], "col": base[:, 3], "block": base[1:3, 2:5],
               "t": torch.randn(3, 5).t(), "scalar": torch.tensor(7), "empty": torch.zeros(0, 3),
               "bf16": torch.randn(2, 3).bfloat16()}
    for dtype in (torch.float64, torch.float16, torch.int64, torch.int32, torch.int16,
                  torch.int8, torch.uint8):
        tensors[str(dtype)] = (torch.rand(2, 3) * 100).to(dtype)
    tensors["bool"] = torch.tensor([True, False, True])
    return tensors


def test_torch_dtypes_views_and_layouts(tmp_path, torch):
    tensors = torch_tensors(torch)
    torch.save(tensors, tmp_path / "t.pt")
    with zipfile.ZipFile(tmp_path / "t.pt") as z:      # the views share one storage
        assert sum("/data/" in n for n in z.namelist()) == len(tensors) - 3
    expected = {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy()
                for k, v in tensors.items()}
    check_arrays(cconv.load(tmp_path / "t.pt"), expected)


def test_torch_parameters_with_and_without_state(tmp_path, torch):
    model = torch.nn.Linear(3, 2)
    model.weight.note = "a Python attribute"        # pickled with _rebuild_parameter_with_state
    torch.save(model.state_dict(keep_vars=True), tmp_path / "p.pt")
    check_arrays(cconv.load(tmp_path / "p.pt"),
                 {k: v.detach().numpy() for k, v in model.state_dict().items()})


def test_torch_writes_only_the_allowed_globals(tmp_path, torch):
    """What torch.save writes for a state_dict, dis-assembled: its globals are GLOBALS."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    torch.save(model.state_dict(keep_vars=True), tmp_path / "p.pt")
    found = set()
    for name in ("m.pt", "p.pt"):
        with zipfile.ZipFile(tmp_path / name) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
        found |= {tuple(arg.split(" ")) for op, arg, _ in pickletools.genops(data)
                  if op.name == "GLOBAL"}
    assert found <= set(_checkpoint.GLOBALS), found - set(_checkpoint.GLOBALS)
    assert ("torch._utils", "_rebuild_tensor_v2") in found


# ---- malicious pickles ------------------------------------------------------------------

class Reduce:
    """An object whose unpickling calls function(*args)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def payloads(marker):
    """(what, data.pkl, the refused global as a regex): each would create marker if run."""
    touch = f"open({str(marker)!r}, 'w')"
    return [
        ("os.system", pickle.dumps({"w": Reduce(os.system, f"touch {marker}")}, 2),
         r"(posix|os)\.system"),
        ("eval", pickle.dumps(Reduce(eval, touch), 2), r"(__builtin__|builtins)\.eval"),
        ("exec, protocol 4", pickle.dumps(Reduce(exec, touch), 4), r"builtins\.exec"),
        ("Popen", pickle.dumps(Reduce(subprocess.Popen, ["touch", str(marker)]), 2),
         r"(subprocess|commands)\.Popen"),       # protocol 2 writes Python 2's name
        ("hand-made", b"cposix\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.",
         r"posix\.system"),
        ("inside a tensor", state_dict_pickle({"w": tensor("0", 12, 0, (3,), (1,)).replace(
            global_("collections", "OrderedDict") + b")R",
            global_("builtins", "eval") + push((touch,)) + b"R")}), r"builtins\.eval"),
        ("a torch name not allowed", state_dict_pickle({"w": tensor("0", 12, 0, (3,), (1,),
                                                                    rebuild="_rebuild_qtensor")}),
         r"torch\._utils\._rebuild_qtensor"),
        ("getattr", pickle.dumps(Reduce(getattr, Reduce(__import__, "os"), "system"), 2),
         r"(__builtin__|builtins)\.getattr"),
    ]


@pytest.mark.parametrize("case", range(len(payloads("m"))),
                         ids=[p[0] for p in payloads("m")])
def test_a_malicious_pickle_is_refused_naming_the_global(tmp_path, case):
    marker = tmp_path / "marker"
    _, data, name = payloads(marker)[case]
    path = write_pt(tmp_path / "evil.pt", data, {"0": STORAGE.tobytes()})
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: .*global {name}.*refused, "
                                         "nothing was run"):
        cconv.load(path)
    assert not marker.exists()
    # The same pickle outside a zip is not unpickled at all.
    (tmp_path / "bare.pt").write_bytes(data)
    with pytest.raises(ValueError, match=r"bare.pt: (a bare pickle|not a checkpoint)"):
        cconv.load(tmp_path / "bare.pt")
    assert not marker.exists()


STORAGE_RECORD = (b"(" + push("storage") + global_("torch", "FloatStorage") + push("0")
                  + push("cpu") + push(12) + b"tQ")


@pytest.mark.parametrize(("target", "state"), [
    (STORAGE_RECORD, (None, {"numel": 10**6})),
    (STORAGE_RECORD, {"numel": 10**6}),
    (global_("torch._utils", "_rebuild_tensor_v2"), (None, {"function": None})),
    (global_("torch._utils", "_rebuild_tensor_v2"), {"__defaults__": (1,)}),
    (global_("torch", "FloatStorage"), (None, {"code": "f8"})),
    (global_("collections", "OrderedDict"), (None, {"fromkeys": None})),
], ids=["storage-slots", "storage-dict", "stand-in-slots", "stand-in-dict", "storage-type",
        "OrderedDict"])
def test_build_cannot_change_a_storage_or_an_allowed_global(tmp_path, target, state):
    """A BUILD opcode (setattr on the object below the state) fails on every object the
    unpickler hands out, and the next file reads as before."""
    path = write_pt(tmp_path / "b.pt", b"\x80\x02" + target + push(state) + b"b.",
                    {"0": STORAGE.tobytes()})
    with refused(path):
        cconv.load(path)
    assert _checkpoint.GLOBALS["torch._utils", "_rebuild_tensor_v2"].function is (
        _checkpoint._rebuild_tensor_v2)
    assert _checkpoint.GLOBALS["torch", "FloatStorage"].code == "f4"
    test_a_hand_made_torch_file_loads(tmp_path)


# ---- malformed torch files --------------------------------------------------------------

MALFORMED = {
    "extent past the storage": ({"w": tensor("0", 12, 0, (13,), (1,))}, "reaches element 13"),
    "offset past the storage": ({"w": tensor("0", 12, 10, (3,), (1,))}, "reaches element 13"),
    "stride past the storage": ({"w": tensor("0", 12, 0, (2, 2), (11, 1))}, "reaches element 13"),
    "huge stride": ({"w": tensor("0", 12, 0, (2,), (2**70,))}, "reaches element"),
    "negative offset": ({"w": tensor("0", 12, -1, (3,), (1,))}, "offset -1"),
    "negative stride": ({"w": tensor("0", 12, 11, (3,), (-1,))}, "stride (-1,)"),
    "negative size": ({"w": tensor("0", 12, 0, (-3,), (1,))}, "size (-3,)"),
    "stride and size lengths": ({"w": tensor("0", 12, 0, (3, 1), (1,))}, "expected non-negative"),
    "offset a string": ({"w": tensor("0", 12, "0", (3,), (1,))}, "offset '0'"),
    "huge zero-stride view": ({"w": tensor("0", 12, 0, (2**40, 2**40), (0, 0))}, "zero stride"),
    "huge numel": ({"w": tensor("0", 2**62, 0, (3,), (1,))}, f"expected {2**64}"),
    "numel not the storage's": ({"w": tensor("0", 11, 0, (3,), (1,))},
                                "has 48 bytes, expected 44"),
    "storage as two types": ({"a": tensor("0", 12, 0, (3,), (1,)),
                              "b": tensor("0", 6, 0, (3,), (1,), kind="DoubleStorage")},
                             "storage '0' is named as 12 x FloatStorage and as 6 x DoubleStorage"),
    "missing data member": ({"w": tensor("7", 12, 0, (3,), (1,))}, "no member 'archive/data/7'"),
    "tensor from a dict": ({"w": global_("torch._utils", "_rebuild_tensor_v2")
                            + push(({}, 0, (1,), (1,), False, None)) + b"R"},
                           "rebuilt from a dict"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_tensor_is_refused(tmp_path, case):
    tensors, words = MALFORMED[case]
    path = write_pt(tmp_path / "bad.pt", state_dict_pickle(tensors), {"0": STORAGE.tobytes()})
    with refused(path, words):
        cconv.load(path)


@pytest.mark.parametrize(("what", "data", "words"), [
    ("a list", b"\x80\x02]q\x00.", "holds a list, not a state_dict"),
    ("a nested dict", pickle.dumps({"model": {}}, 2), "entry 'model' is a dict"),
    ("a truncated pickle", state_dict_pickle({"w": tensor("0", 12, 0, (3,), (1,))})[:-9],
     "not a valid pickle"),
    ("a huge length field", b"\x80\x03\x8e" + (2**60).to_bytes(8, "little") + b"ab.",
     "not a valid pickle"),
    ("an odd persistent id", b"\x80\x02U\x03abcQ.", "persistent id abc"),
])
def test_a_pickle_that_is_not_a_state_dict_is_refused(tmp_path, what, data, words):
    path = write_pt(tmp_path / "bad.pt", data)
    with refused(path, words):
        cconv.load(path)


def test_a_bad_byteorder_or_compressed_storage_is_refused(tmp_path):
    pkl = state_dict_pickle({"w": tensor("0", 12, 0, (3,), (1,))})
    path = write_pt(tmp_path / "b.pt", pkl, {"0": STORAGE.tobytes()}, byteorder=b"middle")
    with refused(path, "byteorder is b'middle'"):
        cconv.load(path)
    with zipfile.ZipFile(tmp_path / "z.pt", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", STORAGE.tobytes())
    with refused(tmp_path / "z.pt", "is compressed"):
        cconv.load(tmp_path / "z.pt")


def test_a_truncated_torch_file_is_refused(tmp_path):
    data = good_pt(tmp_path / "m.pt").read_bytes()
    for length in range(4, len(data), 7):
        (tmp_path / "cut.pt").write_bytes(data[:length])
        with refused(tmp_path / "cut.pt", "truncated or corrupt zip archive"):
            cconv.load(tmp_path / "cut.pt")


def test_every_corrupted_byte_of_data_pkl_gives_a_dict_or_a_value_error(tmp_path):
    good = good_pt(tmp_path / "m.pt")
    with zipfile.ZipFile(good) as z:
        pkl = z.read("archive/data.pkl")
    for i in range(len(pkl)):
        for value in {0, 255, (pkl[i] + 1) % 256}:
            path = write_pt(tmp_path / "c.pt", pkl[:i] + bytes([value]) + pkl[i + 1:],
                            {"0": STORAGE.tobytes()})
            try:
                state = cconv.load(path)
            except ValueError as error:
                assert str(path) in str(error)
            else:
                assert all(isinstance(a, np.ndarray) for a in state.values())


# ---- .npz -------------------------------------------------------------------------------

def npz_arrays():
    rng = np.random.default_rng(0)
    return {"f32": rng.standard_normal((3, 4)).astype(np.float32),
            "f64": rng.standard_normal(5), "f16": np.float16([1, 2.5]),
            "i64": np.arange(6).reshape(2, 3), "u8": np.uint8([0, 255]),
            "bool": np.array([1, 0], bool),
            "fortran": np.asfortranarray(rng.standard_normal((3, 2))),
            "big_endian": np.arange(4, dtype=">f8"), "scalar": np.array(3.5),
            "empty": np.zeros((0, 3), np.float32), "complex": np.complex64([1 + 2j])}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_round_trip(tmp_path, save):
    arrays = npz_arrays()
    save(tmp_path / "a.npz", **arrays)
    expected = {k: a.astype(a.dtype.newbyteorder("=")) for k, a in arrays.items()}
    check_arrays(cconv.load(tmp_path / "a.npz"), expected)


def test_npz_object_arrays_and_lying_headers_are_refused(tmp_path):
    np.savez(tmp_path / "o.npz", ok=np.zeros(2), obj=np.array([1, "x"], dtype=object))
    with refused(tmp_path / "o.npz", "'obj.npy' holds object elements, not numbers"):
        cconv.load(tmp_path / "o.npz")
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as z, z.open("h.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (2**40,)})
        member.write(b"\0" * 16)
    with refused(tmp_path / "h.npz", "'h.npy' has 16 bytes of data", f"needs {2**43}"):
        cconv.load(tmp_path / "h.npz")


# ---- .safetensors -----------------------------------------------------------------------

def write_safetensors(path, header, data, length=None):
    text = json.dumps(header).encode()
    path.write_bytes((len(text) if length is None else length).to_bytes(8, "little") + text
                     + data)
    return path


def safetensors_of(arrays):
    """(header, data) for name -> (dtype name, little-endian array)."""
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, (dtype, array) in arrays.items():
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + array.nbytes]}
        data += array.tobytes()
    return header, data


def test_safetensors_round_trip(tmp_path):
    bf16 = np.array([[1.0, -0.5], [2.0**-100, -0.0]], np.float32)
    arrays = {"f32": ("F32", np.arange(6, dtype="<f4").reshape(2, 3)),
              "f64": ("F64", np.array([1.5, -2.0])), "f16": ("F16", np.float16([0.5])),
              "bf16": ("BF16", (bf16.view(np.uint32) >> 16).astype("<u2")),
              "i64": ("I64", np.arange(3)), "u8": ("U8", np.uint8([7])),
              "bool": ("BOOL", np.array([True, False])), "scalar": ("I32", np.array(5, np.int32)),
              "empty": ("F32", np.zeros((0, 3), np.float32))}
    path = write_safetensors(tmp_path / "m.safetensors", *safetensors_of(arrays))
    expected = {k: a for k, (_, a) in arrays.items()}
    expected["bf16"] = bf16
    check_arrays(cconv.load(path), expected)
    # Told by content, whatever the suffix.
    os.rename(path, tmp_path / "m.bin")
    check_arrays(cconv.load(tmp_path / "m.bin"), expected)


def two(first, second):
    return {"a": {"dtype": "F32", "shape": [4], "data_offsets": first},
            "b": {"dtype": "F32", "shape": [4], "data_offsets": second}}


SAFETENSORS_BAD = {
    "header past the end": (two([0, 16], [16, 32]), 10**6, "header length (1000000) runs past"),
    "offsets past the data": (two([0, 16], [32, 48]), None, "starts at byte 32 of the data, "
                                                            "expected 16"),
    "overlap": (two([0, 16], [8, 24]), None, "starts at byte 8"),
    "data longer than the tensors": ({"a": two([0, 16], [16, 32])["a"]}, None,
                                     "cover 16 bytes, but the data has 32"),
    "size not the shape's": (two([0, 12], [12, 32]), None, "hold 12 bytes"),
    "unknown dtype": ({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, None,
                      "tensor 'a': expected"),
    "negative size": ({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, None,
                      "tensor 'a': expected"),
    "missing offsets": ({"a": {"dtype": "F32", "shape": [4]}}, None, "tensor 'a': expected"),
    "reversed offsets": (two([16, 0], [16, 32]), None, "hold -16 bytes"),
    "not an object": ([1, 2], None, "a JSON list"),
}


@pytest.mark.parametrize("case", SAFETENSORS_BAD)
def test_a_malformed_safetensors_file_is_refused(tmp_path, case):
    header, length, words = SAFETENSORS_BAD[case]
    path = write_safetensors(tmp_path / "m.safetensors", header, bytes(32), length)
    with refused(path, words):
        cconv.load(path)


def test_safetensors_repeated_names_bad_json_and_a_short_file_are_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    text = b'{"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}, "a": 1}'
    path.write_bytes(len(text).to_bytes(8, "little") + text)
    with refused(path, "has 'a' twice"):
        cconv.load(path)
    path.write_bytes((5).to_bytes(8, "little") + b"{nope")
    with refused(path, "header is not JSON"):
        cconv.load(path)
    path.write_bytes(b"\1\0\0")
    with refused(path, "too short"):
        cconv.load(path)


# ---- not a checkpoint -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "data", "words"), [
    ("notes.pt", b"just some text\n" * 5, "not a checkpoint"),
    ("empty.pt", b"", "not a checkpoint"),
    ("random.bin", np.random.default_rng(0).bytes(300), "not a checkpoint"),
])
def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, name, data, words):
    (tmp_path / name).write_bytes(data)
    with refused(tmp_path / name, words):
        cconv.load(tmp_path / name)


def test_another_zip_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with refused(tmp_path / "x.zip", "neither a torch.save checkpoint"):
        cconv.load(tmp_path / "x.zip")


def test_path_must_be_a_path():
    with pytest.raises(TypeError, match="load.*path.*got int"):
        cconv.load(3)
