"""The judge: test cells decided where the learner's code cannot reach (issue 10).

In the learner's kernel, code from a solution cell shares the interpreter with the checks: it can
patch ``np.isclose``, replace ``grading.check_function``, set a trace hook that rewrites the
comparison, or read the hidden tests from ``linecache``. So at autograde time:

1. :class:`HideHiddenTestsFromKernel` (before ``SandboxedExecute``) removes the hidden-test
   regions from the test cells the kernel runs: the kernel runs the notebook exactly as the
   learner sees it, for the outputs of the feedback. Its results for test cells are not the
   verdict.
2. :class:`JudgeTests` (right after ``SandboxedExecute``) decides each test cell: it runs the
   WHOLE test cell source from the gradebook (visible and hidden) in the grader's own process, in
   a fresh namespace holding the notebook's locked setup/data cells (also from the gradebook) and,
   for every name the learner's solution cells define, a proxy into a sandboxed worker process
   (:mod:`.worker`) that holds only those cells. Values cross by value with safe serialization;
   objects cross as handles. The cell's outputs are replaced by the judge's: an error output
   carrying the GradingFailure message when it fails, none when it passes, so nbgrader's own
   ``SaveAutoGrades`` scores the judge's verdict.

What the learner's code can still do happens in the worker: compute its answers. It never sees a
test cell, an expected answer or the gradebook, and nothing it patches there changes the judge.
docs/GRADING.md ("Who decides a test") is the instructor's account.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import linecache
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import traceback
import types
import warnings
from typing import Any

import numpy as np
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Bool, Integer

from cnnlib.grading.autograde import worker as W
from cnnlib.grading.autograde.notes import META, add_note

SUBSTITUTE_HOOK = "__cnnlib_substitute_remote__"  # read by cnnlib.grading.references.substitute
_CELL_NAME = re.compile(r"<[\w .:-]{1,100}>")


class WorkerLost(BaseException):
    """The worker stopped or did not answer in time (a BaseException: checks do not wrap it)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


# --------------------------------------------------------------------------------------------
# the kernel runs the notebook as the learner sees it


class HideHiddenTestsFromKernel(NbGraderPreprocessor):
    """Remove the hidden-test regions from the test cells before the learner's kernel runs them.

    :class:`JudgeTests` puts the gradebook's source back afterwards (so the graded notebook, the
    formgrader and the feedback look as they always did) and decides the cells itself.
    """

    enabled = Bool(True, help="Hide hidden tests from the kernel (JudgeTests decides them)").tag(config=True)
    start_worker_early = Bool(True, help="Start the judge's worker (and run the leading setup "
                              "cells in it) while the kernel runs").tag(config=True)

    def preprocess(self, nb, resources):
        if not self.enabled:
            return nb, resources
        hider = ClearHiddenTests(parent=self)
        for cell in nb.cells:
            if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
                try:
                    hider._remove_hidden_test_region(cell)
                except RuntimeError:  # unbalanced markers: JudgeTests restores the source anyway
                    cell.source = ""
        _stop_early_workers()
        if self.start_worker_early and not nb.metadata.get(META, {}).get("placeholder"):
            try:
                resources[EARLY] = _start_early(self, nb, resources)
            except Exception:  # noqa: BLE001 - JudgeTests starts one itself
                self.log.warning("Could not start the judge's worker early:\n%s", traceback.format_exc(limit=3))
        return nb, resources


EARLY = "_cnnlib_judge_worker"
_EARLY_WORKERS: list = []


def _stop_early_workers() -> None:
    """Stop workers started early for a notebook whose judging never came (an error between)."""
    while _EARLY_WORKERS:
        link, box = _EARLY_WORKERS.pop()
        link.stop()
        if box is not None:
            try:
                box.close()
            except Exception:  # noqa: BLE001
                pass


def _start_early(pre, nb, resources) -> dict:
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gb:
        source_nb = gb.find_notebook(info["notebook"], info["assignment"])
        graded = {c.name for c in source_nb.grade_cells}
        locked = {c.name: c.source for c in source_nb.source_cells
                  if c.locked and c.cell_type == "code" and c.name not in graded}
    executor = _sandbox_settings(pre)
    box = executor._make_sandbox(resources) if executor is not None else None
    link = WorkerLink(box, _cell_timeout(pre), pre.log)
    _EARLY_WORKERS.append((link, box))
    link.spawn()
    sent, stop = [], len(nb.cells)
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            stop = i
            break
        if cell.cell_type == "code" and meta.get("locked") and meta.get("grade_id") in locked:
            link.send_ahead({"op": "run", "label": meta["grade_id"]}, code=locked[meta["grade_id"]])
            sent.append(i)
    return {"link": link, "box": box, "sent": sent, "next": stop}


# --------------------------------------------------------------------------------------------
# proxies of the learner's objects, in the judge


class RemoteObject:
    """An object living in the worker: attributes and methods are used remotely."""

    def __init__(self, link: "WorkerLink", key: str, meta: dict):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_key", key)
        if isinstance(meta.get("name"), str):
            object.__setattr__(self, "__name__", meta["name"])
            object.__setattr__(self, "__qualname__", meta["name"])

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # numpy and copy probe these: never ask the learner's code
        return self._link.op({"op": "getattr", "h": self._key, "name": name})

    def __setattr__(self, name: str, value: Any) -> None:
        self._link.op({"op": "setattr", "h": self._key, "name": name}, value=value)

    def __repr__(self) -> str:
        try:
            text = self._link.op({"op": "repr", "h": self._key, "repr": True})
        except Exception:  # noqa: BLE001
            text = None
        return text if isinstance(text, str) else f"<{type(self).__name__} object>"

    def __str__(self) -> str:
        try:
            text = self._link.op({"op": "repr", "h": self._key, "repr": False})
        except Exception:  # noqa: BLE001
            text = None
        return text if isinstance(text, str) else f"<{type(self).__name__} object>"

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):
        raise TypeError("a learner's object cannot be pickled")


def _remote_call(self, *args, **kwargs):
    __tracebackhide__ = True
    return self._link.call(self._key, args, kwargs)


def _remote_len(self):
    value = self._link.op({"op": "len", "h": self._key})
    if type(value) is not int or value < 0:
        raise TypeError("len() of the learner's object is not a non-negative int")
    return value


def _remote_getitem(self, key):
    return self._link.op({"op": "getitem", "h": self._key}, key=key)


def _remote_setitem(self, key, value):
    self._link.op({"op": "setitem", "h": self._key}, key=key, value=value)


def _remote_iter(self):
    items = self._link.op({"op": "list", "h": self._key})
    if not isinstance(items, list):
        raise TypeError("iterating the learner's object did not give a list")
    return iter(items)


_CAPS = {"call": ("__call__", _remote_call), "len": ("__len__", _remote_len),
         "getitem": ("__getitem__", _remote_getitem), "setitem": ("__setitem__", _remote_setitem),
         "iter": ("__iter__", _remote_iter)}


# --------------------------------------------------------------------------------------------
# the worker process, from the judge's side


class WorkerLink:
    """Start, talk to, restart and stop one notebook's worker."""

    def __init__(self, sandbox, timeout: int, log, startup_timeout: int = 120):
        self.sandbox = sandbox
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.channel: W.Channel | None = None
        self.judge_objects: dict[str, Any] = {}
        self.fetched: dict[tuple, np.ndarray] = {}  # arrays of judge_objects read by the learner during a call
        self.classes: dict[tuple, type] = {}
        self.codec = W.Codec(self._export, self._resolve, self._proxy)
        self.deadline: float | None = None
        self.pending = 0  # replies to requests sent ahead
        self.cell_file = f"learner-{secrets.token_hex(4)}"

    # ---- process ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and wait until it answers."""
        self.spawn()
        self.deadline = time.monotonic() + self.startup_timeout
        self.op({"op": "names"})  # it is up

    def spawn(self) -> None:
        """Start the worker's process without waiting for it (its start-up overlaps the kernel's)."""
        self.pending = 0
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-m", "cnnlib.grading.autograde.worker"]
        if self.sandbox is not None:
            self.sandbox.env.setdefault("MPLBACKEND", "Agg")
            argv = self.sandbox.launcher_argv(argv)
            env = None
        else:
            env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONSAFEPATH": "1"}
        try:
            self.proc = subprocess.Popen(argv, stdin=theirs, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True, env=env,
                                         cwd=self.sandbox.workdir if self.sandbox is not None else None)
        finally:
            theirs.close()
        self.channel = W.Channel(ours, self._serve)

    def send_ahead(self, header: dict, **values) -> None:
        """Send a request whose reply is read (and dropped) before the next operation."""
        blobs: list = []
        for key, value in values.items():
            header[key] = self.codec.encode(value, blobs)
        self.channel.send(header, blobs)
        self.pending += 1

    def _drain(self) -> None:
        while self.pending:
            message, blobs = self.channel.receive()
            if message.get("op") in ("reply", "raise"):
                self.pending -= 1
            else:
                self.channel.answer(message, blobs)

    def stop(self) -> None:
        if self.channel is not None:
            try:
                self.channel.sock.close()
            except OSError:
                pass
            self.channel = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                try:
                    self.proc.kill()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.sandbox is not None:
            try:
                self.sandbox.kill_leftovers()
            except Exception:  # noqa: BLE001 - never lose a grade over cleaning up
                self.log.error("Killing the worker's processes failed:\n%s", traceback.format_exc())
        self.judge_objects.clear()

    def _exit_description(self) -> str:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        if code is None:
            return "it stopped responding"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    # ---- handles ------------------------------------------------------------------------
    def _export(self, obj: Any) -> dict:
        """What of the judge's may go to the learner's code: a proxy of theirs going home, a
        function (called back, nothing else), or a cnnlib object (public attributes only)."""
        if isinstance(obj, RemoteObject):
            if object.__getattribute__(obj, "_link") is not self:
                raise TypeError("an object of another worker cannot be sent")
            return {"$back": object.__getattribute__(obj, "_key")}
        if isinstance(obj, types.ModuleType):
            raise TypeError(f"the module {obj.__name__} cannot be passed to the learner's code")
        module = getattr(type(obj), "__module__", "") or ""
        if not (callable(obj) or module == "cnnlib" or module.startswith("cnnlib.")):
            raise TypeError(f"a {type(obj).__name__} cannot be passed to the learner's code "
                            "(only plain data, functions and cnnlib objects)")
        key = secrets.token_hex(8)
        self.judge_objects[key] = obj
        name = getattr(obj, "__name__", None)
        return {"$ref": key, "name": name if isinstance(name, str) else None}

    def _resolve(self, tag: dict) -> Any:
        try:
            return self.judge_objects[tag["$back"]]
        except (KeyError, TypeError):
            raise W.ProtocolError("unknown handle") from None

    def _proxy(self, tag: dict) -> Any:
        caps = tuple(sorted(c for c in tag.get("caps", []) if c in _CAPS))
        type_name = str(tag.get("type", "object"))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", type_name):
            type_name = "LearnerObject"
        cls = self.classes.get((type_name, caps))
        if cls is None:
            cls = type(type_name, (RemoteObject,), {_CAPS[c][0]: _CAPS[c][1] for c in caps})
            cls.__module__ = "learner"
            self.classes[(type_name, caps)] = cls
        return cls(self, str(tag["$ref"]), tag)

    # ---- requests the worker makes (call-backs) -----------------------------------------
    def _serve(self, message: dict, blobs: list) -> tuple[dict, list]:
        op = message.get("op")
        target = self._resolve({"$back": message.get("h")})
        if op == "callback":
            if not callable(target):
                raise TypeError("not callable")
            args = self.codec.decode(message.get("args", []), blobs)
            kwargs = self.codec.decode(message.get("kwargs", {"$d": []}), blobs)
            if not isinstance(args, list) or not isinstance(kwargs, dict) or \
                    not all(isinstance(k, str) for k in kwargs):
                raise W.ProtocolError("bad call-back")
            result = target(*args, **kwargs)
        elif op == "callback_getattr":
            name = message.get("name")
            module = getattr(type(target), "__module__", "") or ""
            if not isinstance(name, str) or name.startswith("_") or not module.startswith("cnnlib"):
                raise AttributeError(f"the learner's code may not read {name!r} of the grader's objects")
            result = getattr(target, name)
            if isinstance(result, np.ndarray):
                self.fetched[(message.get("h"), name)] = result
        elif op == "callback_setattr":  # `p.data -= lr * p.grad` on a grader's cnnlib object
            name = message.get("name")
            module = getattr(type(target), "__module__", "") or ""
            if not isinstance(name, str) or name.startswith("_") or not module.startswith("cnnlib") \
                    or callable(getattr(target, name, None)):
                raise AttributeError(f"the learner's code may not set {name!r} of the grader's objects")
            value = self.codec.decode(message.get("value"), blobs)
            current = self.fetched.pop((message.get("h"), name), None)
            if message.get("inplace") and current is not None and getattr(target, name) is current:
                _apply_back(current, value)  # an in-place operator: the same array, changed
            else:
                setattr(target, name, value)
            result = None
        else:
            raise W.ProtocolError(f"unknown request {op!r}")
        out: list = []
        return {"value": self.codec.encode(result, out)}, out

    # ---- operations ---------------------------------------------------------------------
    def _request(self, header: dict, blobs: list) -> tuple[dict, list]:
        if self.channel is None:
            raise WorkerLost("died", "the process running your code is not available")
        self.channel.deadline = self.deadline
        try:
            self._drain()
            return self.channel.request(header, blobs)
        except W.ChannelTimeout:
            self.stop()
            raise WorkerLost("timeout", "stopped after the time limit per cell") from None
        except (W.ChannelClosed, OSError, ConnectionError):
            why = self._exit_description()
            self.stop()
            raise WorkerLost("died", f"the process running your code stopped ({why})") from None
        except W.ProtocolError as exc:
            self.stop()
            raise WorkerLost("died", f"the process running your code sent something invalid ({exc})") from None

    def op(self, header: dict, **values) -> Any:
        """One remote operation; ``values`` are encoded into the header; returns the value."""
        __tracebackhide__ = True
        blobs: list = []
        for key, value in values.items():
            header[key] = self.codec.encode(value, blobs)
        try:
            reply, rblobs = self._request(header, blobs)
        except W.RemoteException as exc:
            raise remote_error(exc.info) from None
        if "error" in reply and header.get("op") == "run":
            return reply["error"]
        try:
            return self.codec.decode(reply.get("value"), rblobs)
        except W.ProtocolError as exc:
            self.stop()
            raise WorkerLost("died", f"the process running your code sent something invalid ({exc})") from None

    def call(self, key: str, args: tuple, kwargs: dict) -> Any:
        """Call a learner's function; the guard of the exercise being checked goes along, and
        arguments it changed in place are changed here too (the check looks for that)."""
        __tracebackhide__ = True
        from cnnlib.grading import guard

        self.fetched.clear()
        blobs: list = []
        header = {"op": "call", "h": key, "guard": guard.current(),
                  "shortcuts": guard.current() is not None and not guard.shortcuts_blocked(),
                  "args": self.codec.encode(list(args), blobs),
                  "kwargs": self.codec.encode(dict(kwargs), blobs)}
        try:
            reply, rblobs = self._request(header, blobs)
        except W.RemoteException as exc:
            raise remote_error(exc.info, self.cell_file) from None
        try:
            value = self.codec.decode(reply.get("value"), rblobs)
            after = reply.get("args_after") or []
            for original, new in zip(args, after if isinstance(after, list) else []):
                if new is not None and isinstance(original, W.CHANGEABLE):
                    _apply_back(original, self.codec.decode(new, rblobs))
            # arrays of the grader's objects that the learner's code changed in place
            for item in reply.get("attrs_after") or []:
                if not (isinstance(item, list) and len(item) == 3 and item[2] is not None):
                    continue
                obj_key, name, new = item
                current = self.fetched.pop((obj_key, name), None)
                target = self.judge_objects.get(obj_key) if isinstance(obj_key, str) else None
                if current is not None and target is not None and getattr(target, name, None) is current:
                    _apply_back(current, self.codec.decode(new, rblobs))
        except W.ProtocolError as exc:
            self.stop()
            raise WorkerLost("died", f"the process running your code sent something invalid ({exc})") from None
        return value


def _apply_back(original: Any, new: Any) -> None:
    """Make ``original`` (the judge's argument) look as the learner's call left it."""
    if isinstance(original, np.random.Generator):
        if isinstance(new, np.random.Generator) and type(new.bit_generator) is type(original.bit_generator):
            original.bit_generator.state = new.bit_generator.state  # what the learner's code drew
    elif isinstance(original, np.ndarray):
        if isinstance(new, np.ndarray) and new.shape == original.shape and original.flags.writeable:
            try:
                np.copyto(original, new, casting="unsafe")
            except (TypeError, ValueError):
                pass
    elif isinstance(original, list) and isinstance(new, list):
        if len(original) == len(new):
            for i, (o, n) in enumerate(zip(original, new)):
                if isinstance(o, W.CHANGEABLE):
                    _apply_back(o, n)
                elif type(o) is not type(n) or o != n:
                    original[i] = n
        else:
            original[:] = new
    elif isinstance(original, dict) and isinstance(new, dict):
        for k in list(original):
            if k not in new:
                del original[k]
        for k, n in new.items():
            if k in original and isinstance(original[k], W.CHANGEABLE):
                _apply_back(original[k], n)
            else:
                original[k] = n


_REMOTE_CLASSES: dict[tuple, type] = {}


def remote_error(info: dict, cell_file: str | None = None) -> BaseException:
    """The learner's exception in the judge: the matching builtin type (so ErrorHints match),
    the learner's message, their traceback text (``_remote_traceback``) and their innermost
    frame in the traceback (so ``grading`` names the learner's line)."""
    if not isinstance(info, dict):
        info = {}
    name, module = str(info.get("type", "Exception")), str(info.get("module", "builtins"))
    message = str(info.get("message", ""))
    if module == "cnnlib.grading.guard" and name == "ReferenceBlockedError":
        from cnnlib.grading.guard import ReferenceBlockedError

        exc: BaseException = ReferenceBlockedError(message)
    else:
        base: type = Exception
        for candidate in info.get("mro", []) or []:
            cls = getattr(builtins, str(candidate), None)
            if isinstance(cls, type) and issubclass(cls, Exception):
                base = cls
                break
        if module == "builtins" and base.__name__ == name:
            cls = base
        else:
            safe = name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,99}", name) else "LearnerError"
            cls = _REMOTE_CLASSES.get((module, safe, base))
            if cls is None:
                cls = type(safe.rsplit(".", 1)[-1], (base,), {"__module__": module[:100]})
                cls.__qualname__ = safe
                _REMOTE_CLASSES[(module, safe, base)] = cls
        try:
            exc = cls(message)
        except Exception:  # noqa: BLE001 - a builtin with another signature
            exc = Exception(f"{name}: {message}")
    tb = info.get("traceback")
    exc._remote_traceback = [str(t) for t in tb] if isinstance(tb, list) else []  # type: ignore[attr-defined]
    frame = info.get("frame")
    if isinstance(frame, list) and len(frame) == 4:
        exc = _with_learner_frame(exc, frame)
    return exc


def _with_learner_frame(exc: BaseException, frame: list) -> BaseException:
    """Give ``exc`` a traceback entry for the learner's line (file ``<cell>``, line, function)."""
    filename, lineno, name, line = frame
    if not (isinstance(filename, str) and _CELL_NAME.fullmatch(filename) and type(lineno) is int
            and 0 < lineno < 100_000 and isinstance(name, str) and isinstance(line, str)):
        return exc
    if not re.fullmatch(r"[A-Za-z_<][\w<>.]{0,99}", name):
        return exc
    lines = ["\n"] * (lineno - 1) + [line[:500] + "\n"]
    linecache.cache[filename] = (None, None, lines, filename)
    code = compile("\n" * (lineno - 1) + "raise __exc__\n", filename, "exec").replace(co_name=name)
    try:
        exec(code, {"__exc__": exc})  # noqa: S102 - our own two-line code object
    except BaseException as raised:  # noqa: BLE001
        return raised
    return exc


# --------------------------------------------------------------------------------------------
# judging one notebook


class Judge:
    """Decides the test cells of one submitted notebook."""

    def __init__(self, nb, sources: dict[str, dict], link: WorkerLink, timeout: int, log,
                 max_restarts: int = 5, skip: dict[int, str] | None = None, folder: str | None = None):
        self.nb, self.sources, self.link, self.timeout, self.log = nb, sources, link, timeout, log
        self.max_restarts = max_restarts
        self.restarts = 0
        self.skip = dict(skip or {})  # cell index -> why the worker does not run it
        self.sent: list[int] = []  # cells the worker ran, in order (replayed after a restart)
        self.next_cell = 0
        self.started = False
        self.given_up: str | None = None
        self.folder = folder  # the source notebook's folder: where its setup cells read files
        self.setup_ns = self._trusted_namespace()

    # ---- the trusted namespace --------------------------------------------------------------
    def _trusted_namespace(self) -> dict:
        """The locked setup/data cells of the SOURCE notebook, run in the judge (source order)."""
        ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        for info in self.sources.values():
            if info["cell_type"] == "code" and info["locked"] and not info["grade"]:
                with _quiet(), _in_folder(self.folder):
                    try:
                        exec(W.compile_cell(info["source"], f"<{info['name']}>", ns), ns)  # noqa: S102
                    except Exception:  # noqa: BLE001 - a data cell that needs the learner's code
                        self.log.warning("Setup cell %s failed in the judge:\n%s", info["name"],
                                         traceback.format_exc(limit=3))
        _close_figures()
        return ns

    # ---- the worker's cells -------------------------------------------------------------------
    def _worker_code(self, index: int) -> tuple[str, str] | None:
        """(label, code) the worker runs for cell ``index``, or None."""
        cell = self.nb.cells[index]
        if cell.cell_type != "code":
            return None
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if meta.get("solution"):
            return gid or f"cell {index + 1}", cell.source
        if meta.get("locked") and not meta.get("grade") and gid in self.sources:
            return gid, self.sources[gid]["source"]  # trusted: the gradebook's
        return None

    def _start(self) -> None:
        self.link.start()
        self.started = True
        for index in list(self.sent):
            self._run_in_worker(index, replay=True)

    def _run_in_worker(self, index: int, replay: bool = False) -> None:
        label, code = self._worker_code(index)
        self.link.deadline = time.monotonic() + self.timeout
        try:
            self.link.op({"op": "run", "label": label}, code=code)
        except WorkerLost as lost:
            self.skip[index] = (f"{label} stopped the process running your code ({lost.message}); "
                                "it was left out of grading")
            if index in self.sent:
                self.sent.remove(index)
            add_note(self.nb, "judge", self.skip[index], self.log, label)
            raise
        if not replay:
            self.sent.append(index)

    def _catch_up(self, upto: int) -> None:
        """Run the worker's cells before cell ``upto`` (restarting the worker when needed)."""
        while True:
            try:
                if not self.started:
                    self._start()
                while self.next_cell < upto:
                    index = self.next_cell
                    if index not in self.skip and self._worker_code(index) is not None:
                        self._run_in_worker(index)
                    self.next_cell += 1
                return
            except WorkerLost:
                self.started = False
                if self.next_cell < upto and self.next_cell in self.skip:
                    self.next_cell += 1
                self._count_restart()
                if self.given_up:
                    raise

    def _count_restart(self) -> None:
        self.restarts += 1
        if self.restarts > self.max_restarts:
            self.given_up = (f"not graded: the process running your code had to be restarted more "
                             f"than {self.max_restarts} times")
            add_note(self.nb, "judge", self.given_up, self.log)

    def _namespace(self, code) -> dict:
        """The test cell's namespace: the setup's, and a proxy (or the value) for each name of the
        learner's that the test cell's code mentions."""
        ns = dict(self.setup_ns)
        self.link.deadline = time.monotonic() + self.timeout
        names = self.link.op({"op": "names"})
        wanted = _names_in(code)
        for name in names if isinstance(names, list) else []:
            if not isinstance(name, str) or name not in wanted or name in ns or hasattr(builtins, name):
                continue  # the setup's names and the builtins are the judge's own
            try:
                ns[name] = self.link.op({"op": "get", "name": name})
            except Exception:  # noqa: BLE001 - not readable: the test cell will say it is missing
                self.log.warning("Could not read the learner's %r from the worker", name)
        ns[SUBSTITUTE_HOOK] = self._substitute
        return ns

    def _substitute(self, stand_ins: dict):
        """grading.substitute in the judge: the stand-ins replace the learner's functions in the
        worker too (as call-backs into the judge) until the ``with`` block ends."""
        saved = []

        def undo():
            for name, old in reversed(saved):
                try:
                    self.link.op({"op": "unbind", "name": name}, value=old)
                except (Exception, WorkerLost):  # noqa: BLE001 - the worker is gone: nothing to undo
                    pass

        try:
            for name, value in stand_ins.items():
                saved.append((name, self.link.op({"op": "bind", "name": name}, value=value)))
        except BaseException:
            undo()
            raise
        return undo

    # ---- one test cell ------------------------------------------------------------------------
    def judge_cell(self, index: int, gid: str) -> list:
        """The outputs of test cell ``index`` as decided by the judge."""
        if self.given_up:
            return [_error("NotGraded", self.given_up)]
        source = self.sources[gid]["source"]
        try:
            self._catch_up(index)
        except WorkerLost as lost:
            return [_error("NotGraded", self.given_up or lost.message)]
        out, err = io.StringIO(), None
        try:
            with _quiet(out):
                scratch: dict = {}
                code = W.compile_cell(source, f"<{gid}>", scratch)
                ns = self._namespace(code)
                ns.update(scratch)
                self.link.deadline = time.monotonic() + self.timeout
                exec(code, ns)  # noqa: S102 - the gradebook's test cell
        except WorkerLost as lost:
            self.started = False
            self._count_restart()
            if lost.kind == "timeout":
                message = (f"this test was stopped after {self.timeout} s, the time limit per cell "
                           "(an endless loop in your code?)")
                err = _error("CellTimeoutError", message)
            else:
                message = f"{lost.message} while this test ran"
                err = _error("KernelDied", message)
            add_note(self.nb, "judge", f"{gid}: {message}", self.log, gid)
        except Exception as exc:  # noqa: BLE001 - the verdict: this test cell fails
            err = _failure_output(exc)
        _close_figures()
        outputs = []
        text = out.getvalue()
        if text:
            outputs.append(new_output("stream", name="stdout", text=text[-200_000:]))
        if err is not None:
            outputs.append(err)
        return outputs


def _close_figures() -> None:
    """Figures made by setup or test cells in the judge (the grader's process) are not kept."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        try:
            pyplot.close("all")
        except Exception:  # noqa: BLE001
            pass


@contextlib.contextmanager
def _in_folder(folder: str | None):
    if not folder or not os.path.isdir(folder):
        yield
        return
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def _names_in(code: types.CodeType) -> set[str]:
    """Every name the code (and the functions and classes it defines) may look up."""
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        names.update(c.co_freevars)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return names


@contextlib.contextmanager
def _quiet(out: io.StringIO | None = None):
    """Capture prints and warnings (warnings go to stdout: a warning is not a failed test)."""
    out = out if out is not None else io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield out
        finally:
            for w in caught[:20]:
                out.write(f"{w.category.__name__}: {w.message}\n")


def _error(ename: str, message: str):
    return new_output("error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


def _failure_output(exc: BaseException):
    """An error output for a failed test: the learner's own traceback (if their code raised),
    then the message; never a line of the test cell (it may be hidden)."""
    lines: list[str] = []
    cause = exc.__cause__
    remote = getattr(cause, "_remote_traceback", None) if cause is not None else None
    if remote:
        lines += list(remote)
        lines += ["", "The above exception was the direct cause of the following exception:", ""]
    name = type(exc).__name__
    message = str(exc)
    if isinstance(exc, NameError) and not remote:
        message += " (did its solution cell run without errors, above this test?)"
    lines.append(f"\x1b[0;31m{name}\x1b[0m: {message}")
    return new_output("error", ename=name, evalue=message, traceback=lines)


# --------------------------------------------------------------------------------------------
# the nbgrader plug-in


#: Errors the kernel's run puts on a cell that stopped or hung the kernel: the worker skips it.
KERNEL_BREAKERS = ("KernelDied", "KernelExit", "CellTimeoutError", "NotRun")


class JudgeTests(NbGraderPreprocessor):
    """Decide every test cell in the judge (see the module's docstring); runs after the kernel.

    The worker is sandboxed like the kernel (``SandboxedExecute``'s settings: uid, limits,
    private paths). Every remote operation of a test cell shares ``Execute.timeout``; a worker
    that dies or hangs fails that cell with the reason, is restarted (its earlier cells re-run)
    and grading goes on.
    """

    enabled = Bool(True, help="Decide test cells in the judge (off: the kernel's results count, "
                   "as in plain nbgrader)").tag(config=True)
    max_worker_restarts = Integer(5).tag(config=True)
    timeout = Integer(0, help="Seconds per test cell and per solution cell in the worker "
                      "(0: Execute.timeout)").tag(config=True)

    def _cell_timeout(self) -> int:
        return _cell_timeout(self)

    def preprocess(self, nb, resources):
        early = resources.pop(EARLY, None)
        try:
            return self._judge(nb, resources, early)
        finally:
            _stop_early_workers()

    def _judge(self, nb, resources, early):
        if not self.enabled:
            return nb, resources
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            source_nb = gb.find_notebook(info["notebook"], info["assignment"])
            graded = {c.name for c in source_nb.grade_cells}
            solutions = {c.name for c in source_nb.solution_cells}
            sources = {c.name: {"name": c.name, "source": c.source, "cell_type": c.cell_type,
                                "locked": bool(c.locked), "grade": c.name in graded,
                                "solution": c.name in solutions}
                       for c in source_nb.source_cells}
        sources = _in_source_order(sources, self, info["assignment"], info["notebook"])
        tests = [(i, c.metadata["nbgrader"]["grade_id"]) for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and utils.is_grade(c) and not utils.is_solution(c)
                 and c.metadata["nbgrader"].get("grade_id") in sources]
        for i, gid in tests:  # the graded notebook keeps the whole test (feedback clears it)
            nb.cells[i].source = sources[gid]["source"]
        if nb.metadata.get(META, {}).get("placeholder") or not tests:
            return nb, resources

        skip = {}
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and utils.is_solution(cell):
                broke = [o.get("ename") for o in cell.get("outputs", []) if o.get("output_type") == "error"
                         and o.get("ename") in KERNEL_BREAKERS]
                if broke:
                    skip[i] = f"{cell.metadata['nbgrader'].get('grade_id')} stopped the kernel ({broke[0]})"
        if early is not None:
            link, box = early["link"], early["box"]
            _EARLY_WORKERS[:] = [w for w in _EARLY_WORKERS if w[0] is not link]
        else:
            executor = _sandbox_settings(self)
            box = executor._make_sandbox(resources) if executor is not None else None
            link = WorkerLink(box, self._cell_timeout(), self.log)
        t0 = time.monotonic()
        try:
            judge = Judge(nb, sources, link, self._cell_timeout(), self.log,
                          max_restarts=self.max_worker_restarts, skip=skip,
                          folder=_source_folder(self, info["assignment"]))
            if early is not None and link.channel is not None:
                judge.started, judge.sent, judge.next_cell = True, list(early["sent"]), early["next"]
            for i, gid in tests:
                nb.cells[i].outputs = judge.judge_cell(i, gid)
        finally:
            link.stop()
            if box is not None:
                try:
                    box.close()
                except Exception:  # noqa: BLE001
                    self.log.error("Cleaning up the worker's sandbox failed:\n%s", traceback.format_exc())
        self.log.info("Judged %d test cells of %s in %.1f s", len(tests), info["notebook"], time.monotonic() - t0)
        return nb, resources


def _in_source_order(sources: dict, pre, assignment: str, notebook: str) -> dict:
    from cnnlib.grading.autograde.plugins import _canonical_order, _coursedir_of

    order = _canonical_order(_coursedir_of(pre), assignment, notebook)
    names = [n for n in order if n in sources] + sorted(n for n in sources if n not in order)
    return {n: sources[n] for n in names}


def _cell_timeout(pre) -> int:
    value = getattr(pre, "timeout", 0)
    if isinstance(value, int) and value > 0 and isinstance(pre, JudgeTests):
        return value
    judge_cfg = pre.config.get("JudgeTests", {}) if pre.config else {}
    if isinstance(judge_cfg.get("timeout", None), int) and judge_cfg["timeout"] > 0:
        return judge_cfg["timeout"]
    value = pre.config.get("Execute", {}).get("timeout", None) if pre.config else None
    return int(value) if isinstance(value, int) and value > 0 else 30


def _source_folder(pre, assignment: str) -> str | None:
    from cnnlib.grading.autograde.plugins import _coursedir_of

    cd = _coursedir_of(pre)
    if cd is None:
        return None
    try:
        return os.path.abspath(cd.format_path(cd.source_directory, ".", assignment))
    except Exception:  # noqa: BLE001
        return None


def _sandbox_settings(pre):
    """A SandboxedExecute configured like the kernel's (its sandbox settings and limits)."""
    from cnnlib.grading.autograde.plugins import SandboxedExecute

    executor = SandboxedExecute(parent=pre)
    return executor if executor.sandbox else None
