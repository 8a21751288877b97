"""Write an nbgrader SOURCE notebook (solutions/NN_name/NN_name.ipynb) from a Python script.

The .ipynb under solutions/ is what nbgrader reads; a `scripts/build_NN_name.py` script built on
this module is the easy way to write and review one (plain text, short helpers, no JSON by hand).
Run the script after editing it; `make release` then regenerates notebooks/. tests/test_notebooks.py
fails when a script and its notebook drift apart, so edit the script, not the .ipynb.

    nb = Notebook("03_conv_layer")                 # grade_ids get the prefix "nb03_"
    nb.md("# 03 · The convolution layer ...")
    nb.setup("import numpy as np\\nfrom cnnlib import grading")   # read-only, restored when grading
    nb.code("x = np.ones(3)")                       # a normal cell (demo, worked example)
    nb.data("rgb_example", "x_demo = ...")          # read-only example arrays that tests may use
    nb.exercise(1, "naive conv forward", points=4,
                text="Write `conv_forward_naive(x, w, b, stride, padding)` ...",
                solution="def conv_forward_naive(...):\\n    ### BEGIN SOLUTION\\n    ...\\n    ### END SOLUTION",
                tests="grading.check_function(...)\\n### BEGIN HIDDEN TESTS\\n...\\n### END HIDDEN TESTS")
    nb.write()                                      # or nb.write(out_dir) for a copy elsewhere

Conventions checked here (and again in tests/test_notebooks.py): an exercise's heading reads
"### Exercise K.N: title (P points)", its solution cell has grade_id "nbK_exN_solution" and its test
cell "nbK_exN_tests" with P points; every solution region and hidden-test region is closed.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import nbformat

from cnnlib.grading import conventions

REPO = Path(__file__).resolve().parents[1]


#: The rules every notebook states in its "How to work" paragraph (the grader enforces them the
#: same way everywhere: cnnlib.grading.checks.check_function and cnnlib.grading.guard).
RULES = """\
**What every test checks.** Your function is compared with cnnlib's reference on the visible cases
and, when graded, on random hidden ones. While it runs, cnnlib's reference is switched off, and so
are the library functions that would do a "write it yourself" exercise's whole job (scipy.signal's
`correlate`/`convolve` family, scipy.ndimage's filters, `np.convolve`): each exercise says which
libraries it allows. numpy's array operations (`np.sum`, `np.pad`, slicing, `@`, ...) are always
fine. **One dtype rule:** an array you return has the dtype the reference gives: a float input keeps
its float type (float32 in, float32 out), an integer image gives float64, and counts are integers.
And leave the arguments alone: a function that changes its input in place (an array or a list)
fails."""


def _dedent(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


class Notebook:
    """An nbgrader source notebook under construction (see the module docstring)."""

    def __init__(self, name: str):
        if not re.fullmatch(r"\d\d_[a-z0-9_]+", name):
            raise ValueError(f"notebook name must look like '01_images_and_kernels', got {name!r}")
        self.name = name
        self.number = int(name[:2])
        self.prefix = conventions.prefix(self.number)
        self.cells: list = []

    # -- cells ---------------------------------------------------------------------------------
    def _add(self, cell, grade_id: str | None = None, **nbgrader) -> None:
        cell.id = grade_id.replace("_", "-") if grade_id else f"{self.prefix}-{len(self.cells):03d}"
        if grade_id:
            meta = {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                    "solution": False, "task": False}
            meta.update(nbgrader)
            cell.metadata["nbgrader"] = meta
        self.cells.append(cell)

    def md(self, text: str) -> None:
        """A markdown cell (text is dedented)."""
        self._add(nbformat.v4.new_markdown_cell(_dedent(text)))

    def code(self, source: str) -> None:
        """An ordinary code cell: demos and worked examples. Learners may edit it."""
        self._add(nbformat.v4.new_code_cell(_dedent(source)))

    def setup(self, source: str) -> None:
        """The read-only import cell; nbgrader restores it from the gradebook when grading."""
        self._add(nbformat.v4.new_code_cell(_dedent(source)), f"{self.prefix}_setup", locked=True)

    def references(self, *articles: str) -> None:
        """The references cell: the source articles (keys of scripts/articles.py) by title and
        author. The text calls each of them "the article"."""
        from articles import references_markdown  # scripts/ is on sys.path when a build script runs

        self.md(references_markdown(*articles))

    def data(self, name: str, source: str) -> None:
        """A read-only cell holding a worked example's arrays, which test cells may use.

        Like the setup cell it is locked and restored from the gradebook when grading, so a test
        can check the seed's example without repeating its numbers.
        """
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"data cell name must be lower_snake_case, got {name!r}")
        self._add(nbformat.v4.new_code_cell(_dedent(source)), f"{self.prefix}_data_{name}", locked=True)

    def exercise(self, n: int, title: str, *, points: int, text: str, solution: str, tests: str) -> None:
        """Heading + statement (markdown), solution cell, test cell worth ``points``."""
        solution, tests = _dedent(solution), _dedent(tests)
        for (begin, end), src in (((conventions.BEGIN_SOLUTION, conventions.END_SOLUTION), solution),
                                  ((conventions.BEGIN_HIDDEN, conventions.END_HIDDEN), tests)):
            if src.count(begin) != 1 or src.count(end) != 1:
                raise ValueError(f"exercise {n}: need exactly one {begin!r} / {end!r} pair")
        unit = "point" if points == 1 else "points"
        self.md(f"### Exercise {self.number}.{n}: {title} ({points} {unit})\n\n{_dedent(text)}")
        self._add(nbformat.v4.new_code_cell(solution), conventions.grade_id(self.number, n, "solution"),
                  solution=True)
        self._add(nbformat.v4.new_code_cell(tests), conventions.grade_id(self.number, n, "tests"),
                  grade=True, locked=True,
                  points=points)

    # -- output --------------------------------------------------------------------------------
    def notebook(self):
        nb = nbformat.v4.new_notebook()
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        nb.cells = self.cells
        nbformat.validate(nb)
        return nb

    def write(self, out_dir: str | Path | None = None) -> Path:
        """Write ``<out_dir or solutions/NAME>/NAME.ipynb``; returns the path."""
        folder = Path(out_dir) if out_dir else REPO / "solutions" / self.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.ipynb"
        path.write_text(nbformat.writes(self.notebook()) + "\n", encoding="utf-8")
        return path

    def main(self) -> None:
        """Command line: ``python scripts/build_NN_name.py [OUT_DIR]``."""
        path = self.write(sys.argv[1] if len(sys.argv) > 1 else None)
        print(f"wrote {path}")
