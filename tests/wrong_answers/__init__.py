"""Catalogues of typical wrong answers, one module per notebook: ``nbNN.py``.

Every exercise must tell right from wrong. Each notebook's module lists, per exercise, at least
three wrong solutions that learners really write; ``tests/test_wrong_answers.py`` autogrades them
through nbgrader and asserts that each loses that exercise's points (and only those), and that
the failure message carries the hint that names the mistake, or no guessed hint at all.

A module looks like::

    from wrong_answers import WrongAnswer

    ASSIGNMENT = "02_padding_and_stride"
    WRONG = {
        1: [  # exercise 2.1: its solution cell is nb02_ex1_solution
            WrongAnswer(
                "padding counted once",
                '''
                def output_size(n, kernel_size, stride=1, padding=0):
                    return (n + padding - kernel_size) // stride + 1
                ''',
                hint="padding",          # a substring the failure message must contain
            ),
            WrongAnswer("off by one", "...", hint=None),  # no known hint: the message must not guess
        ],
    }

``code`` replaces the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of the
exercise's solution cell (it is dedented first, then indented like the region it replaces).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WrongAnswer:
    """One typical wrong solution of one exercise.

    Args:
        label: what the mistake is, in a few words (the test id).
        code: the wrong solution region.
        hint: a substring the failure message must contain (the hint naming this mistake), or
            ``None`` when no catalogued hint applies: then the message must carry no ``hint:``
            line that names another mistake (it says what differs and where instead).
        not_hint: substrings the message must NOT contain (hints of other mistakes seen misfiring).
    """

    label: str
    code: str
    hint: str | None = None
    not_hint: tuple[str, ...] = field(default_factory=tuple)

    @property
    def region(self) -> str:
        return textwrap.dedent(self.code).strip("\n")
