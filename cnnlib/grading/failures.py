"""How a failed check reads: :class:`GradingFailure`, the one-line description of a case, and
the learner's own frames of a traceback (never the grader's, never the test cell's)."""

from __future__ import annotations

import os
import re
import sysconfig
import textwrap
import traceback
from typing import Any, Mapping

import numpy as np


Case = Mapping[str, Any]


#: Width of a failure message's lines. ``nbgrader validate`` (the command and the Validate button)
#: cuts every output line at 90 characters minus its indent, so messages are wrapped to fit.
WIDTH = 80
_PREFIX = "GradingFailure: "  # what IPython puts in front of the first line


def wrap_message(message: str, width: int = WIDTH) -> str:
    """``message`` with every line wrapped to ``width`` characters (the first one shorter by the
    ``GradingFailure: `` that precedes it). A continued line keeps its indent, plus 6 after a
    ``hint:``/``note:``/``where:`` label, so the text still reads as one paragraph.

    Example:
        >>> print(wrap_message("case 1: x (2, 3)\\n  hint: " + "word " * 20, width=40))
        case 1: x (2, 3)
          hint: word word word word word word
                word word word word word word
                word word word word word word
                word word
    """
    out: list[str] = []
    for k, line in enumerate(message.split("\n")):
        limit = width - (len(_PREFIX) if k == 0 else 0)
        if len(line) <= limit:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        # keep "(3, 3)" and "padding=(1, 2)" in one piece: break between arguments, not inside them
        line = re.sub(r"(?:\b\w+ )?\([^()]{0,40}\)", lambda m: m[0].replace(" ", "\x00"), line)
        label = re.match(r"\s*(hint|note|where|expected|your function raised)\b:?\s*", line)
        extra = " " * 6 if label and label.group(1) in ("hint", "note", "where") else "  "
        first = textwrap.wrap(line.strip(), width=limit - len(indent), break_on_hyphens=False,
                              break_long_words=True)
        rest = textwrap.wrap(" ".join(first[1:]), width=width - len(indent) - len(extra),
                             break_on_hyphens=False, break_long_words=True)
        out.append(indent + first[0])
        out.extend(indent + extra + r for r in rest)
    return "\n".join(out).replace("\x00", " ")


class GradingFailure(AssertionError):
    """A test cell's check failed; the message says which case, what was wrong and a hint.

    The message is wrapped to :data:`WIDTH` characters a line, so that ``nbgrader validate``
    shows all of it.
    """

    def __init__(self, message: str = "", *args: object) -> None:
        self.message = str(message)  # unwrapped, one line per problem
        super().__init__(wrap_message(self.message), *args)

    def _render_traceback_(self) -> list[str]:
        """What IPython shows for this failure: the learner's own traceback when their code raised,
        then the message; neither the grader's frames nor the test cell's (hidden) lines."""
        lines: list[str] = []
        cause = self.__cause__
        if cause is not None:
            lines += _ipython_traceback(cause)
            lines += ["", "The above exception was the direct cause of the following exception:", ""]
        lines.append(f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}")
        return lines


_GRADER_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "")
_CNNLIB_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def _is_grader(filename: str) -> bool:
    """Code of this package (the grader's frames, hidden from the learner's traceback)."""
    return os.path.realpath(filename).startswith(_GRADER_DIR)


def _ipython_traceback(exc: BaseException) -> list[str]:
    """The learner's exception as IPython formats it, starting at the learner's own code."""
    tb = exc.__traceback__
    while tb is not None and _is_grader(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next  # skip the grader's frames
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.InteractiveTB.structured_traceback(type(exc), exc, tb)
    except Exception:  # pragma: no cover - fall back to the plain format
        pass
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n").split("\n")


def describe_case(case: Case) -> str:
    """One line naming each argument: arrays by shape (and dtype unless float64), others by value.

    A function (an argument of a numerical-gradient exercise) is named, without its address.

    Example:
        >>> describe_case({"x": np.zeros((2, 3, 7, 5)), "w": np.zeros((4, 3, 3, 3)), "stride": 2, "padding": 1})
        'x (2, 3, 7, 5), w (4, 3, 3, 3), stride=2, padding=1'
        >>> describe_case({"f": np.sum, "h": 1e-05})
        'f=sum, h=1e-05'
    """
    parts = []
    for key, value in case.items():
        if isinstance(value, np.ndarray):
            dtype = "" if value.dtype == np.float64 else f" {value.dtype}"
            parts.append(f"{key} {value.shape}{dtype}")
        elif callable(value) and isinstance(getattr(value, "__name__", None), str):
            parts.append(f"{key}={value.__name__}")
        else:
            parts.append(f"{key}={_short(value)}")
    return ", ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cases_pass(n: int) -> str:
    return "1 case passes" if n == 1 else f"all {n} cases pass"


def _fail(message: str) -> None:
    __tracebackhide__ = True
    raise GradingFailure(message)


_LIBRARY_DIRS = tuple(
    os.path.join(os.path.realpath(d), "")
    for d in {_CNNLIB_DIR, os.path.dirname(np.__file__),
              *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
    if d
)


def _is_library(filename: str) -> bool:
    """Code of cnnlib, numpy, or the standard library: not the learner's."""
    return os.path.realpath(filename).startswith(_LIBRARY_DIRS)


def _learner_frames(exc: BaseException) -> str:
    """'line 7 in pad2d: out[...] = x' for the innermost frame of the learner's code (not of numpy's,
    nor of a stand-in that the learner's code called)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _is_grader(f.filename)]
    frames = [f for f in frames if not _is_library(f.filename)] or frames
    if not frames:
        return ""
    f = frames[-1]
    line = f" ({f.line.strip()})" if f.line else ""
    return f"line {f.lineno} in {f.name}{line}"


def _num(v: Any) -> str:
    v = v.item() if hasattr(v, "item") else v
    return f"{v:.6g}" if isinstance(v, float) else repr(v)
