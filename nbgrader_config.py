"""nbgrader configuration of the CNN course.

nbgrader reads this file from the CURRENT directory only, so run `nbgrader ...` from the repo root
(or pass --NbGrader.config_file=PATH; --config is silently ignored). Layout:

    solutions/NN_name/NN_name.ipynb   source notebooks (solutions + visible and hidden tests)
    notebooks/NN_name/NN_name.ipynb   release notebooks, written by `make release`
    submitted/ autograded/ feedback/ gradebook.db   the instructor's private files (git-ignored)
"""

import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from cnnlib.grading.autograde.plugins import ScrubHiddenTestsFromOutputs

c = get_config()  # noqa: F821  (provided by traitlets when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "cnn-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"

# Per-cell timeout while validating and autograding. Every cell of a correct notebook runs in well
# under a second; a learner's runaway loop costs this much for that cell only, then grading goes on.
c.Execute.timeout = 60


# Feedback must not show hidden tests (nbgrader's default does): scrub them from the outputs (a
# traceback quotes the failing line and its neighbours), then clear them from the sources.
c.GenerateFeedback.preprocessors = [
    GetGrades,
    CSSHTMLHeaderPreprocessor,
    ScrubHiddenTestsFromOutputs,
    ClearHiddenTests,
]

# --- Hardened autograding (issue 6; cnnlib/grading/autograde/plugins.py, docs/GRADING.md) ----------------
# Replaces nbgrader's DeduplicateIds and Execute at their plug-in points so that one broken or
# hostile submission (copy-pasted or deleted test cells, invalid or missing notebooks, endless
# loops, dead kernels, floods of output) is graded with a reason instead of stopping the batch,
# and runs learners' code in a sandbox away from solutions/, the gradebook and autograded/.
from cnnlib.grading.autograde.plugins import harden  # noqa: E402

harden(c)
