"""The nbgrader side of the grader: how a class's notebooks are run and graded.

    plugins   nbgrader plug-ins set by ``harden(c)`` in nbgrader_config.py: sanitize a
              submission against the gradebook, execute it in a sandboxed kernel, record
              the reasons for a grade, keep hidden tests out of feedback
    judge     decides the test cells at autograde time, outside the learner's kernel: the
              whole test cell from the gradebook, the learner's names proxied into ...
    worker    ... a sandboxed process holding only the setup and solution cells
    sandbox   the sandboxed kernel: launcher (``python -m cnnlib.grading.autograde.sandbox``),
              its kernel manager, per-learner folders, uids, rlimits and namespaces
    cli       the ``cnn-grade`` command: autograde a whole class, export grades, feedback
    notes     the grading notes (why a submission lost points) all of them record

These modules run learners' notebooks; the checks in :mod:`cnnlib.grading` run in the test cells
(in the learner's kernel while they work, in the judge when a class is graded).
"""
