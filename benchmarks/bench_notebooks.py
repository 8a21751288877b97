"""How long each solution notebook takes to run, and to autograde one learner.

    python benchmarks/bench_notebooks.py                  # every assignment under solutions/
    python benchmarks/bench_notebooks.py 02_padding_and_stride --repeat 3

For each notebook: the seconds nbclient needs to run it top to bottom (kernel start-up included),
and the seconds nbgrader's ``autograde`` needs for one learner who hands in the solution (in a
temporary course built from the repo's nbgrader_config.py; the gradebook and the assignment are
set up before the clock starts). The goal is under 30 s per notebook on two cores (DESIGN.md's bar
is 60 s). The median of ``--repeat`` runs is reported; the machine's load average is printed
beside it, because other work on the cores slows notebooks down.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the notebook helpers shared with the test suite
sys.path.insert(0, str(REPO / "benchmarks"))

import course as C  # noqa: E402
from timing import load_average, print_table  # noqa: E402

GOAL_SECONDS = 30


def time_execution(assignment: str, name: str) -> float:
    nb, seconds = C.execute(C.SOLUTIONS / assignment / name)
    errors = C.errors(nb)
    if errors:
        raise SystemExit(f"{name} does not run cleanly:\n" + "\n".join(errors))
    return seconds


def time_autograde(course: C.Course, assignment: str, student: str) -> float:
    course.release(assignment)
    names = C.notebook_names(assignment)
    course.submit(assignment, student, {n: C.read(C.SOLUTIONS / assignment / n) for n in names})
    t0 = time.perf_counter()
    result = course.api.autograde(assignment, student, force=True, create=True)
    seconds = time.perf_counter() - t0
    if not result["success"]:
        raise SystemExit(f"autograde failed for {assignment}:\n{result.get('error', '')}")
    scores, maxima = course.scores(assignment, student), course.max_scores(assignment)
    if scores != maxima:
        raise SystemExit(f"the solution of {assignment} did not get full marks: {scores} vs {maxima}")
    return seconds


def main() -> None:
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy noise
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="assignment folders (default: all under solutions/)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median reported)")
    args = parser.parse_args()
    assignments = args.assignments or C.assignments()

    print(f"notebooks: execution (nbclient) and autograde of one learner; {load_average()}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as tmp:
        course = C.Course(Path(tmp))
        for assignment in assignments:
            for name in C.notebook_names(assignment):
                run = statistics.median(time_execution(assignment, name) for _ in range(args.repeat))
                grade = statistics.median(
                    time_autograde(course, assignment, f"learner{i}") for i in range(args.repeat)
                )
                ok = "yes" if max(run, grade) < GOAL_SECONDS else "NO"
                rows.append((name, run, grade, ok))
    print_table(rows, ["notebook", "execute (s)", "autograde 1 learner (s)", f"< {GOAL_SECONDS} s"])


if __name__ == "__main__":
    main()
