"""nbgrader configuration of the CNN course.

nbgrader reads this file from the CURRENT directory only, so run `nbgrader ...` from the repo root
(or pass --NbGrader.config_file=PATH; --config is silently ignored). Layout:

    solutions/NN_name/NN_name.ipynb   source notebooks (solutions + visible and hidden tests)
    notebooks/NN_name/NN_name.ipynb   release notebooks, written by `make release`
    submitted/ autograded/ feedback/ gradebook.db   the instructor's private files (git-ignored)
"""

import os
import re

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor, Preprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"

# Per-cell timeout while validating and autograding. Every cell of a correct notebook runs in well
# under a second; a learner's runaway loop costs this much for that cell only, then grading goes on.
c.Execute.timeout = 60


class ScrubHiddenTestsFromOutputs(Preprocessor):
    """Remove hidden-test code from a cell's OUTPUTS before feedback is rendered.

    ClearHiddenTests removes the hidden tests from the cell's source, but a traceback in the output
    still quotes the failing line and its neighbours, which may be hidden-test lines. This drops
    every output line that contains a line of the cell's hidden tests (lines of at least
    `min_chars` characters: shorter ones such as ")" reveal nothing). Runs before ClearHiddenTests.
    """

    begin = "BEGIN HIDDEN TESTS"
    end = "END HIDDEN TESTS"
    min_chars = 6
    _ansi = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

    def _hidden_lines(self, source):
        lines, inside = [], False
        for line in source.splitlines():
            if self.begin in line:
                inside = True
            elif self.end in line:
                inside = False
            elif inside and len(line.strip()) >= self.min_chars:
                lines.append(line.strip())
        return lines

    def _scrub(self, text, hidden):
        kept, dropped = [], False
        for line in text.split("\n"):
            plain = self._ansi.sub("", line)
            if self.begin in plain or self.end in plain or any(h in plain for h in hidden):
                if not dropped:
                    kept.append("    [hidden test code not shown]")
                dropped = True
            else:
                kept.append(line)
                dropped = False
        return "\n".join(kept)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or self.begin not in cell.source:
            return cell, resources
        hidden = self._hidden_lines(cell.source)
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [self._scrub(t, hidden) for t in out.traceback]
                out.evalue = self._scrub(out.evalue, hidden)
            elif out.output_type == "stream":
                out.text = self._scrub(out.text, hidden)
            elif "data" in out:
                for mime, value in out.data.items():
                    if isinstance(value, str) and mime.startswith("text/"):
                        out.data[mime] = self._scrub(value, hidden)
        return cell, resources


# Feedback must not show hidden tests (nbgrader's default does): scrub them from the outputs, then
# clear them from the sources.
c.GenerateFeedback.preprocessors = [
    GetGrades,
    CSSHTMLHeaderPreprocessor,
    ScrubHiddenTestsFromOutputs,
    ClearHiddenTests,
]

# --- Hardened autograding (issue 6; cnnlib/nbgrader_plugins.py, docs/GRADING.md) ----------------
# Replaces nbgrader's DeduplicateIds and Execute at their plug-in points so that one broken or
# hostile submission (copy-pasted or deleted test cells, invalid or missing notebooks, endless
# loops, dead kernels, floods of output) is graded with a reason instead of stopping the batch,
# and runs learners' code in a sandbox away from solutions/, the gradebook and autograded/.
from cnnlib.nbgrader_plugins import harden  # noqa: E402

harden(c)
