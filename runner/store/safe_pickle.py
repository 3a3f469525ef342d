"""Reading pickled files from elsewhere (checkpoints, weights, the Cifar10 archive) so that no code
in them can run.

A pickle is a program: it may name any function (os.system, builtins.exec) and call it while it
loads. `paddle.load` and `paddle.Model.load` are plain `pickle.load` (paddle 3.3's only other path,
safetensors, is another file format), and so is paddle's Cifar10 reader. Here one Unpickler admits
only what numpy arrays, their dtypes and plain containers need, as PyTorch's
`torch.load(weights_only=True)` does; any other name stops the load before it is called. What loaded
is then checked to be plain data: numbers, strings, numeric arrays, in dicts, lists and tuples.

    state = load_state_dict(path, "checkpoint")   # {name: numeric ndarray}, as paddle saves weights
    value = load_plain(path, "optimizer state")   # any plain data

Both raise `UnsafeFileError` (a RunnerError) with one line naming the file. numpy only: no paddle.
"""
from __future__ import annotations

import _compat_pickle
import collections
import pickle
from pathlib import Path

import numpy as np
from numpy._core import multiarray as _multiarray, numeric as _numeric

from runner.errors import RunnerError

# dtype kinds of the arrays a file of numbers may hold: bool, signed, unsigned, float, complex
NUMERIC_KINDS = "biufc"
PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes)
PLAIN_CONTAINERS = (dict, collections.OrderedDict, list, tuple, set, frozenset)
# paddle.save's keys of its own: a table of parameter names, and tensors above 1 GiB cut into slices
NAME_TABLE, SLICES = "StructuredToParameterName@@", "UnpackBigParamInfor@@"  # typos: disable-line


class UnsafeFileError(RunnerError):
    """A file that is not what it should be: unreadable, or holding more than plain data."""


class _NotPlain(pickle.UnpicklingError):
    """What a file asks for that plain data never needs, said as the end of "<file> is not a <what>: ..."."""


def _numeric_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _NotPlain(f"it holds an array of dtype {dtype}, not of numbers")
    return dtype


def _reconstruct(subtype, shape, dtype_code):
    """numpy's own array reconstructor, for exact ndarrays only (not subclasses such as memmap)."""
    if subtype is not np.ndarray:
        raise _NotPlain(f"it holds an array of type {getattr(subtype, '__name__', subtype)}, not a plain ndarray")
    return _multiarray._reconstruct(subtype, shape, dtype_code)


def _scalar(dtype, data=None):
    dtype = _numeric_dtype(dtype)
    return _multiarray.scalar(dtype, data) if data is not None else _multiarray.scalar(dtype)


def _frombuffer(buffer, dtype, shape, order):
    """What protocol 5 pickles an array as."""
    return _numeric._frombuffer(buffer, _numeric_dtype(dtype), shape, order)


def _latin1_bytes(text, encoding="latin1"):
    """How a protocol 2 pickle written by Python 3 spells bytes: _codecs.encode(text, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _NotPlain(f"it asks to call _codecs.encode{(text, encoding)!r}, not as bytes are pickled; nothing in it ran")
    return text.encode("latin1")


def _dense_tensor(*args):
    """paddle.save writes a DenseTensor as eval('data', {'data': array}); that one expression is
    the only one taken, and nothing is evaluated: the array is returned."""
    namespace = args[1] if len(args) == 2 else None
    if args[:1] != ("data",) or not isinstance(namespace, dict) or set(namespace) != {"data"} \
            or not isinstance(namespace["data"], np.ndarray):
        raise _NotPlain(f"it asks to call builtins.eval on {(repr(args[0]) if args else 'nothing')[:60]}, not as paddle saves a tensor; "
                        "nothing in it ran")
    return namespace["data"]


_NUMPY = {"ndarray": np.ndarray, "dtype": np.dtype, "_reconstruct": _reconstruct, "scalar": _scalar,
          "_frombuffer": _frombuffer}
_CONTAINERS = {"tuple": tuple, "list": list, "dict": dict, "set": set, "frozenset": frozenset}
ALLOWED = {
    **{("numpy", n): _NUMPY[n] for n in ("ndarray", "dtype")},
    # numpy 2 and numpy 1 (and Python 2's cPickle, as the Cifar10 archive was written) name them so
    **{(f"numpy.{core}.multiarray", n): _NUMPY[n] for core in ("_core", "core") for n in ("_reconstruct", "scalar")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("_core", "core")},
    **{("builtins", n): c for n, c in _CONTAINERS.items()},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "eval"): _dense_tensor,
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        # Python 2's names (__builtin__.set), as protocol 2 writes them, read as Python 3's
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        found = ALLOWED.get((module, name))
        if found is None:
            raise _NotPlain(f"it asks to call {module}.{name}, which a file of numbers never needs; it was not "
                            "loaded and nothing in it ran")
        return found


def load_plain(path, what: str, encoding: str = "latin1"):
    """The plain data pickled in `path` (numbers, strings, numeric arrays, containers); `what` names
    the kind of file in the message. `encoding` is pickle's, for strings Python 2 wrote."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as err:
        raise UnsafeFileError(f"cannot read {what} {path} ({err.strerror or err})") from None
    with f:
        return unpickle(f, str(path), what, encoding)


def unpickle(stream, where: str, what: str, encoding: str = "latin1"):
    """`load_plain` for a stream read from elsewhere (a member of an archive); `where` names it."""
    try:
        value = RestrictedUnpickler(stream, encoding=encoding).load()
    except _NotPlain as err:
        raise UnsafeFileError(f"{where} is not a {what}: {err}") from None
    except Exception as err:  # truncated or garbled: pickle raises many types
        raise UnsafeFileError(f"{where} is not a readable {what} ({type(err).__name__}: {err})") from None
    problem = not_plain(value)
    if problem:
        raise UnsafeFileError(f"{where} is not a {what}: it holds {problem}")
    return value


def not_plain(value) -> str | None:
    """What in `value` is not plain data, with where it is, or None."""
    stack = [(value, "")]
    while stack:
        item, where = stack.pop()
        at = f" at {where}" if where else ""
        if isinstance(item, np.ndarray):
            if type(item) is not np.ndarray or item.dtype.kind not in NUMERIC_KINDS or item.dtype.fields is not None:
                return f"an array of dtype {item.dtype}{at}, not of numbers"
        elif isinstance(item, np.generic):
            if item.dtype.kind not in NUMERIC_KINDS:
                return f"a numpy value of dtype {item.dtype}{at}"
        elif type(item) in (dict, collections.OrderedDict):
            for key, child in item.items():
                if type(key) not in PLAIN_LEAVES:
                    return f"a key of type {type(key).__name__}{at}"
                stack.append((child, f"{where}[{key!r}]"))
        elif type(item) in PLAIN_CONTAINERS:
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
        elif type(item) not in PLAIN_LEAVES:
            return f"a {type(item).__name__}{at}"
    return None


def load_state_dict(path, what: str) -> dict[str, np.ndarray]:
    """The tensors a `.pdparams` file holds, by name, as numeric arrays, read as `paddle.load` reads
    them (its name table dropped, sliced tensors joined, paddle 2.1's (name, array) pairs taken)."""
    value = load_plain(path, what)
    if not isinstance(value, dict):
        raise UnsafeFileError(f"{path} is not a {what}: it holds a {type(value).__name__}, not tensors by name")
    try:
        value = joined_slices(dict(value))
    except (KeyError, TypeError, ValueError) as err:
        raise UnsafeFileError(f"{path} is not a {what}: its table of sliced tensors is damaged ({err})") from None
    value.pop(NAME_TABLE, None)
    out = {}
    for key, tensor in value.items():
        if isinstance(tensor, tuple) and len(tensor) == 2 and isinstance(tensor[0], str):
            tensor = tensor[1]
        if not isinstance(key, str) or not isinstance(tensor, np.ndarray):
            raise UnsafeFileError(f"{path} is not a {what}: its entry {key!r} is a {type(tensor).__name__}, "
                                  "not a tensor")
        out[key] = tensor
    return out


def joined_slices(state: dict) -> dict:
    """paddle.save cuts an array above 1 GiB into slices listed under SLICES; join them back."""
    table = state.pop(SLICES, None)
    if not isinstance(table, dict):
        return state
    for key, info in table.items():
        parts = [state.pop(part) for part in info["slices"]]
        state[key] = np.concatenate(parts).reshape(info["OriginShape"])
    return state
