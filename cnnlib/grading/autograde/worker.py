"""The sandboxed worker that holds a learner's solution cells while the judge grades them.

At autograde time the verdict on a test cell is decided by the judge (:mod:`.judge`) in the
grader's own process; every name the learner defined is, there, a proxy into this worker: a
separate process started through the sandbox launcher (own uid, limits, private paths hidden,
like the kernel), holding only the notebook's locked setup/data cells and the learner's solution
cells. It never sees a test cell, a reference answer or the gradebook.

The two talk over one socket (the worker's stdin) with :class:`Channel`: length-prefixed frames
of a JSON header plus numpy arrays written with ``np.save(allow_pickle=False)``. Nothing is ever
unpickled. Values cross by value when they are plain data (None, bool, int, float, complex,
str, bytes, numpy arrays and scalars of numeric/bool dtypes, and tuples, lists and dicts of
those); anything else crosses as a *handle*: an id in the owner's table, used through remote
operations (call, getattr, setattr, getitem, len, iter, repr). A function the judge passes to
the learner's code is a handle the worker calls back. Both sides may call each other while a
call is in progress (a learner's function calling a judge's callback): :meth:`Channel.request`
serves requests from the other side until its own answer arrives.

Run as ``python -m cnnlib.grading.autograde.worker`` with the socket on fd 0.
"""

from __future__ import annotations

import io
import json
import linecache
import os
import secrets
import select
import socket
import struct
import sys
import time
import traceback
from typing import Any, Callable

import numpy as np

MAX_MESSAGE_BYTES = 256 * 2**20  # a frame larger than this is a protocol error
MAX_DEPTH = 64  # nesting of containers in one value
MAX_ITEMS = 1_000_000  # elements of one container
MAX_VALUE_BYTES = 64 * 2**20  # a learner's variable larger than this is used by handle
_HEADER = struct.Struct("!QI")  # total length, header length


class ProtocolError(Exception):
    """The other side sent something that is not a valid message."""


class ChannelClosed(Exception):
    """The other side closed the connection (its process stopped)."""


class ChannelTimeout(Exception):
    """No answer before the deadline."""


class RemoteException(Exception):
    """Raised by :meth:`Channel.request` when the other side's operation raised.

    ``info``: {"type", "module", "mro": [names of builtin bases], "message", "traceback": [lines],
    "frame": [filename, lineno, name, line] of the innermost frame of the code that raised}."""

    def __init__(self, info: dict):
        super().__init__(info.get("message", ""))
        self.info = info


# --------------------------------------------------------------------------------------------
# values <-> JSON + arrays


def _is_plain_dtype(dtype: np.dtype) -> bool:
    return dtype.kind in "biufc" and not dtype.hasobject


class Codec:
    """Turns values into JSON-able trees plus arrays, and back; non-plain values become handles.

    ``export(obj)`` -> ``{"$ref": key, ...}`` for an object of ours that the other side may use by
    handle, or ``{"$back": key}`` for a proxy of the other side's object going home (raises
    TypeError when the object must not cross); ``resolve(tag)`` -> our object for a ``$back``
    tag; ``proxy(tag)`` -> a local stand-in for the other side's ``$ref``.
    """

    def __init__(self, export: Callable[[Any], dict], resolve: Callable[[dict], Any], proxy: Callable[[dict], Any]):
        self.export, self.resolve, self.proxy = export, resolve, proxy

    def encode(self, value: Any, blobs: list, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise TypeError("the value is nested too deeply to be sent")
        if value is None or isinstance(value, (bool, str)):
            return value
        if type(value) is int:
            return value if -2**63 <= value < 2**63 else {"$big": str(value)}
        if type(value) is float:
            return {"$f": repr(value)} if value != value or value in (float("inf"), float("-inf")) else value
        if type(value) is complex:
            return {"$c": [repr(value.real), repr(value.imag)]}
        if type(value) is bytes:
            return {"$b": self._blob(np.frombuffer(value, dtype=np.uint8), blobs)}
        if isinstance(value, np.ndarray) and _is_plain_dtype(np.ndarray.view(value, np.ndarray).dtype):
            # a subclass crosses as the plain array over its memory (its methods may lie)
            return {"$a": self._blob(np.ndarray.view(value, np.ndarray), blobs)}
        if isinstance(value, np.generic) and type(value).__module__ == "numpy" and _is_plain_dtype(value.dtype):
            return {"$s": self._blob(np.asarray(value), blobs)}
        if type(value) in (tuple, list):
            if len(value) > MAX_ITEMS:
                raise TypeError("the value has too many elements to be sent")
            items = [self.encode(v, blobs, depth + 1) for v in value]
            return {"$t": items} if type(value) is tuple else items
        if type(value) is dict:
            if len(value) > MAX_ITEMS:
                raise TypeError("the value has too many elements to be sent")
            return {"$d": [[self.encode(k, blobs, depth + 1), self.encode(v, blobs, depth + 1)]
                           for k, v in value.items()]}
        if type(value) is slice:
            return {"$sl": [self.encode(value.start, blobs, depth + 1), self.encode(value.stop, blobs, depth + 1),
                            self.encode(value.step, blobs, depth + 1)]}
        if value is Ellipsis:
            return {"$e": 1}
        if type(value) is np.random.Generator and type(value.bit_generator).__name__ in _BIT_GENERATORS:
            # by value: its state is plain data; the state after a call goes back (it was consumed)
            return {"$rng": [type(value.bit_generator).__name__,
                             self.encode(value.bit_generator.state, blobs, depth + 1)]}
        return self.export(value)

    @staticmethod
    def _blob(array: np.ndarray, blobs: list) -> int:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array) if array.ndim else array, allow_pickle=False)
        blobs.append(buf.getvalue())
        return len(blobs) - 1

    def decode(self, tree: Any, blobs: list, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("value nested too deeply")
        if tree is None or isinstance(tree, (bool, int, float, str)):
            return tree
        if isinstance(tree, list):
            return [self.decode(v, blobs, depth + 1) for v in tree]
        if not isinstance(tree, dict) or len(tree) < 1:
            raise ProtocolError("malformed value")
        if "$a" in tree or "$s" in tree or "$b" in tree:
            key = "$a" if "$a" in tree else "$s" if "$s" in tree else "$b"
            index = tree[key]
            if not isinstance(index, int) or not 0 <= index < len(blobs):
                raise ProtocolError("bad array reference")
            array = np.load(io.BytesIO(blobs[index]), allow_pickle=False)
            if not _is_plain_dtype(array.dtype):
                raise ProtocolError(f"arrays of dtype {array.dtype} are not accepted")
            if key == "$a":
                return array
            if key == "$b":
                return array.astype(np.uint8, copy=False).tobytes()
            if array.ndim != 0:
                raise ProtocolError("bad scalar")
            return array[()]
        if "$t" in tree:
            return tuple(self.decode(v, blobs, depth + 1) for v in _list(tree["$t"]))
        if "$d" in tree:
            out = {}
            for pair in _list(tree["$d"]):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ProtocolError("bad dict item")
                key = self.decode(pair[0], blobs, depth + 1)
                try:
                    out[key] = self.decode(pair[1], blobs, depth + 1)
                except TypeError as exc:  # unhashable key
                    raise ProtocolError(f"bad dict key: {exc}") from None
            return out
        if "$f" in tree:
            return float(_str(tree["$f"]))
        if "$big" in tree:
            text = _str(tree["$big"])
            if len(text) > 4000:
                raise ProtocolError("integer too large")
            return int(text)
        if "$c" in tree:
            re_, im = _list(tree["$c"])
            return complex(float(_str(re_)), float(_str(im)))
        if "$sl" in tree:
            parts = [self.decode(v, blobs, depth + 1) for v in _list(tree["$sl"])]
            if len(parts) != 3:
                raise ProtocolError("bad slice")
            return slice(*parts)
        if "$e" in tree:
            return Ellipsis
        if "$rng" in tree:
            parts = _list(tree["$rng"])
            name, state = parts if len(parts) == 2 else (None, None)
            if name not in _BIT_GENERATORS:
                raise ProtocolError("unknown random generator")
            bit_generator = getattr(np.random, name)()
            try:
                bit_generator.state = self.decode(state, blobs, depth + 1)
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise ProtocolError(f"bad random generator state ({exc})") from None
            return np.random.Generator(bit_generator)
        if "$back" in tree:  # one of our own objects, coming back by its handle
            return self.resolve(tree)
        if "$ref" in tree:  # an object of the sender's, used through a proxy
            return self.proxy(tree)
        raise ProtocolError("unknown value tag")


#: numpy bit generators whose Generator crosses by value (its state), as a test cell's `rng`
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


#: argument types whose in-place changes (values, a generator's state) go back after a call
CHANGEABLE = (np.ndarray, list, dict, np.random.Generator)


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise ProtocolError("malformed value")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ProtocolError("malformed value")
    return value


# --------------------------------------------------------------------------------------------
# the channel


class Channel:
    """One end of the judge-worker connection: framed messages and nested request/reply.

    ``serve(message)`` handles a request from the other side and returns the reply's header
    fields (it may raise: the error is sent back as a RemoteException's info).
    """

    def __init__(self, sock: socket.socket, serve: Callable[[dict, list], tuple[dict, list]]):
        self.sock = sock
        self.serve = serve
        self.deadline: float | None = None  # monotonic time after which waiting gives up

    # ---- frames -------------------------------------------------------------------------------
    def send(self, header: dict, blobs: list = ()) -> None:
        head = json.dumps({**header, "blobs": [len(b) for b in blobs]}, allow_nan=True).encode()
        total = _HEADER.size + len(head) + sum(len(b) for b in blobs)
        if total > MAX_MESSAGE_BYTES:
            raise TypeError(f"the message is too large to be sent ({total:,} bytes)")
        self.sock.sendall(b"".join([_HEADER.pack(total, len(head)), head, *blobs]))

    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout()
                ready, _, _ = select.select([self.sock], [], [], left)
                if not ready:
                    raise ChannelTimeout()
            chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise ChannelClosed()
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def receive(self) -> tuple[dict, list]:
        total, head_len = _HEADER.unpack(self._read(_HEADER.size))
        if total > MAX_MESSAGE_BYTES or head_len > total - _HEADER.size:
            raise ProtocolError(f"message of {total:,} bytes refused")
        try:
            header = json.loads(self._read(head_len))
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"unreadable message header ({type(exc).__name__})") from None
        if not isinstance(header, dict) or not isinstance(header.get("blobs"), list):
            raise ProtocolError("malformed message")
        sizes = header["blobs"]
        if not all(isinstance(s, int) and s >= 0 for s in sizes) or sum(sizes) != total - _HEADER.size - head_len:
            raise ProtocolError("malformed message sizes")
        blobs = [self._read(s) for s in sizes]
        return header, blobs

    # ---- request / reply ----------------------------------------------------------------------
    def request(self, header: dict, blobs: list = ()) -> tuple[dict, list]:
        """Send a request, serve the other side's requests meanwhile, return the reply."""
        self.send(header, blobs)
        while True:
            message, mblobs = self.receive()
            op = message.get("op")
            if op == "reply":
                return message, mblobs
            if op == "raise":
                info = message.get("error")
                raise RemoteException(info if isinstance(info, dict) else {"message": "?"})
            self.answer(message, mblobs)

    def answer(self, message: dict, blobs: list) -> None:
        """Serve one request and send the reply (or the error)."""
        try:
            reply, rblobs = self.serve(message, blobs)
        except (ChannelClosed, ChannelTimeout, ProtocolError):
            raise
        except BaseException as exc:  # noqa: BLE001 - every error of the served code goes back
            if isinstance(exc, KeyboardInterrupt) and not _IN_WORKER:
                raise
            self.send({"op": "raise", "error": exception_info(exc)})
            return
        self.send({"op": "reply", **reply}, rblobs)


_IN_WORKER = False
_GRADER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")


def _is_grader(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_GRADER_DIR)


def exception_info(exc: BaseException, skip: Callable[[str], bool] | None = None) -> dict:
    """What crosses for an exception: names, message, the traceback of the code that raised
    (without the frames of this package: the worker's and the guard's)."""
    skip = skip or _is_grader
    mro = [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"]
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not skip(f.filename)]
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a learner's exception whose __str__ fails
        message = "<the exception's message could not be read>"
    lines: list[str] = []
    if frames:
        lines.append("Traceback (most recent call last):")
        lines += [ln.rstrip("\n") for ln in traceback.format_list(frames)[-20:]]
    lines.append(f"{type(exc).__qualname__}: {message}" if message else type(exc).__qualname__)
    innermost = frames[-1] if frames else None
    return {
        "type": str(type(exc).__qualname__)[:200],
        "module": str(type(exc).__module__)[:200],
        "mro": mro,
        "message": message[:20000],
        "traceback": [ln[:2000] for ln in "\n".join(lines).split("\n")][-200:],
        "frame": ([innermost.filename, innermost.lineno, innermost.name, innermost.line or ""]
                  if innermost else None),
    }


# --------------------------------------------------------------------------------------------
# cells with IPython syntax


class _NoShell:
    """``get_ipython()`` outside IPython: magics (``%matplotlib inline``) and shell escapes do
    nothing."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def compile_cell(code: str, filename: str, ns: dict):
    """Compile a notebook cell; one with IPython syntax (magics, ``!cmd``) goes through IPython's
    own transformer first, and its magics become no-ops."""
    try:
        return compile(code, filename, "exec")
    except SyntaxError:
        try:
            from IPython.core.inputtransformer2 import TransformerManager
        except ImportError:
            raise
        transformed = TransformerManager().transform_cell(code)
        ns.setdefault("get_ipython", _NoShell)
        return compile(transformed, filename, "exec")


# --------------------------------------------------------------------------------------------
# the worker process


class Worker:
    """Holds the learner's namespace and serves the judge's requests."""

    def __init__(self, sock: socket.socket):
        self.ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.objects: dict[str, Any] = {}  # handle id -> our object
        self.codec = Codec(self._export, self._resolve, self._proxy)
        self.channel = Channel(sock, self.serve)
        self.setup_bindings: dict[str, int] = {}
        # arrays read from the grader's objects during a call, with a snapshot: the ones the
        # learner's code changed in place (``p.data[...] -= ...``) go back when the call ends
        self.fetched: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    # ---- handles --------------------------------------------------------------------------
    def _export(self, obj: Any) -> dict:
        if isinstance(obj, JudgeObject):
            return {"$back": obj._key}
        key = secrets.token_hex(8)
        self.objects[key] = obj
        name = getattr(obj, "__name__", None) if callable(obj) else None
        caps = [cap for cap, attr in (("call", "__call__"), ("len", "__len__"), ("getitem", "__getitem__"),
                                      ("setitem", "__setitem__"), ("iter", "__iter__"))
                if hasattr(type(obj), attr)]
        return {"$ref": key, "caps": caps, "type": str(type(obj).__name__)[:100],
                "name": name[:200] if isinstance(name, str) else None}

    def _resolve(self, tag: dict) -> Any:
        try:
            return self.objects[tag["$back"]]
        except (KeyError, TypeError):
            raise ProtocolError("unknown handle") from None

    def _proxy(self, tag: dict) -> Any:
        return JudgeObject(self, str(tag["$ref"]), tag.get("name"))

    def value_reply(self, value: Any) -> tuple[dict, list]:
        blobs: list = []
        return {"value": self.codec.encode(value, blobs)}, blobs

    # ---- requests from the judge ----------------------------------------------------------
    def serve(self, message: dict, blobs: list) -> tuple[dict, list]:
        op = message.get("op")
        if op == "run":
            return self.run(str(message["code"]), str(message.get("label", "cell")))
        if op == "names":
            return self.value_reply(self.learner_names())
        if op == "get":  # by value when small, else by handle
            value = self.ns[str(message["name"])]
            blobs: list = []
            try:
                tree = self.codec.encode(value, blobs)
                if sum(len(b) for b in blobs) > MAX_VALUE_BYTES:
                    raise MemoryError
            except (MemoryError, TypeError):
                blobs = []
                tree = self._export(value)
            return {"value": tree}, blobs
        if op == "bind":  # grading.substitute: a stand-in for the duration of a check
            name = str(message["name"])
            missing = name not in self.ns
            old = self.ns.get(name)
            self.ns[name] = self.codec.decode(message["value"], blobs)
            return self.value_reply([missing, old])
        if op == "unbind":
            name = str(message["name"])
            missing, old = self.codec.decode(message["value"], blobs)
            if missing:
                self.ns.pop(name, None)
            else:
                self.ns[name] = old
            return self.value_reply(None)
        target = self._resolve({"$back": message.get("h")})
        if op == "call":
            return self.call(target, message, blobs)
        if op == "getattr":
            return self.value_reply(getattr(target, str(message["name"])))
        if op == "setattr":
            setattr(target, str(message["name"]), self.codec.decode(message["value"], blobs))
            return self.value_reply(None)
        if op == "getitem":
            return self.value_reply(target[self.codec.decode(message["key"], blobs)])
        if op == "setitem":
            target[self.codec.decode(message["key"], blobs)] = self.codec.decode(message["value"], blobs)
            return self.value_reply(None)
        if op == "len":
            return self.value_reply(len(target))
        if op == "list":
            items = []
            for item in target:
                items.append(item)
                if len(items) > MAX_ITEMS:
                    raise ValueError("more than a million items")
            return self.value_reply(items)
        if op == "repr":
            return self.value_reply(repr(target)[:2000] if message.get("repr", True) else str(target)[:2000])
        raise ProtocolError(f"unknown operation {op!r}")

    def call(self, fn: Any, message: dict, blobs: list) -> tuple[dict, list]:
        args = self.codec.decode(message.get("args", []), blobs)
        kwargs = self.codec.decode(message.get("kwargs", {"$d": []}), blobs)
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ProtocolError("bad call")
        self.fetched.clear()  # what an earlier call (perhaps one that raised) read is not this call's
        exercise = message.get("guard")
        if isinstance(exercise, str):
            from cnnlib.grading import guard

            # the check's own rule: library shortcuts refused unless the exercise allows them
            with guard.blocked(exercise, shortcuts=message.get("shortcuts") is True):
                result = fn(*args, **kwargs)
        else:
            result = fn(*args, **kwargs)
        out: list = []
        reply = {"value": self.codec.encode(result, out)}
        # arguments the function may have changed in place go back, so the judge sees it
        after = []
        for a in args:
            after.append(self._encode_quietly(a, out) if isinstance(a, CHANGEABLE) else None)
        reply["args_after"] = after
        changed = [[key, name, self._encode_quietly(a, out)] for (key, name), (a, snap) in self.fetched.items()
                   if a.shape != snap.shape or not np.array_equal(a, snap, equal_nan=a.dtype.kind in "fc")]
        self.fetched.clear()
        if changed:
            reply["attrs_after"] = changed
        return reply, out

    def _encode_quietly(self, value: Any, blobs: list) -> Any:
        mark = len(blobs)
        try:
            return self.codec.encode(value, blobs)
        except Exception:  # noqa: BLE001 - not sendable after all: the judge keeps its own
            del blobs[mark:]
            return None

    # ---- cells --------------------------------------------------------------------------
    def run(self, code: str, label: str) -> tuple[dict, list]:
        filename = f"<{label}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            compiled = compile_cell(code, filename, self.ns)
            exec(compiled, self.ns)  # noqa: S102 - the learner's solution cell, in the sandbox
        except BaseException as exc:  # noqa: BLE001 - SystemExit (exit()) included
            return {"error": exception_info(exc)}, []
        return {"error": None}, []

    def learner_names(self) -> list[str]:
        return sorted(k for k in self.ns if isinstance(k, str) and not k.startswith("__"))

    def loop(self) -> None:
        while True:
            message, blobs = self.channel.receive()
            self.channel.answer(message, blobs)


class JudgeObject:
    """In the worker: a function (or object) of the judge's, used by call back."""

    def __init__(self, worker: Worker, key: str, name: Any):
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_key", key)
        if isinstance(name, str):
            object.__setattr__(self, "__name__", name)

    def __call__(self, *args, **kwargs):
        w = self._worker
        blobs: list = []
        header = {"op": "callback", "h": self._key, "args": w.codec.encode(list(args), blobs),
                  "kwargs": w.codec.encode(dict(kwargs), blobs)}
        try:
            reply, rblobs = w.channel.request(header, blobs)
        except RemoteException as exc:
            raise _rebuild(exc.info) from None
        return w.codec.decode(reply.get("value"), rblobs)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        w = self._worker
        try:
            reply, rblobs = w.channel.request({"op": "callback_getattr", "h": self._key, "name": name})
        except RemoteException as exc:
            raise _rebuild(exc.info) from None
        value = w.codec.decode(reply.get("value"), rblobs)
        if type(value) is np.ndarray:
            w.fetched[(self._key, name)] = (value, value.copy())
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name == "__name__":
            object.__setattr__(self, name, value)
            return
        w = self._worker
        blobs: list = []
        header = {"op": "callback_setattr", "h": self._key, "name": name, "value": w.codec.encode(value, blobs)}
        fetched = w.fetched.pop((self._key, name), None)
        if fetched is not None and value is fetched[0]:
            header["inplace"] = True  # `p.data -= x`: numpy changed the array itself, then rebinds it
        try:
            w.channel.request(header, blobs)
        except RemoteException as exc:
            raise _rebuild(exc.info) from None

    def __repr__(self) -> str:
        return f"<the grader's {getattr(self, '__name__', 'object')}>"


def _rebuild(info: dict) -> BaseException:
    """An exception of the judge's side, as the learner's code sees it (builtin type + message)."""
    import builtins

    for name in info.get("mro", []):
        cls = getattr(builtins, str(name), None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                return cls(info.get("message", ""))
            except Exception:  # noqa: BLE001
                break
    return RuntimeError(info.get("message", ""))


def main() -> int:
    global _IN_WORKER
    _IN_WORKER = True
    sock = socket.socket(fileno=os.dup(0))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the learner's input() reads nothing
    os.close(devnull)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    # the learner's prints go nowhere (the feedback shows the kernel's run, not this one)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    os.environ.setdefault("MPLBACKEND", "Agg")
    worker = Worker(sock)
    try:
        worker.loop()
    except (ChannelClosed, KeyboardInterrupt):
        return 0
    except ProtocolError as exc:
        print(f"worker: protocol error: {exc}", file=sys.__stderr__)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
