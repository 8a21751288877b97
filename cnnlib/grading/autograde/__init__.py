"""The nbgrader side of the grader: how a class's notebooks are run and graded.

    plugins   nbgrader plug-ins set by ``harden(c)`` in nbgrader_config.py: sanitize a
              submission against the gradebook, execute it in a sandboxed kernel, record
              the reasons for a grade, keep hidden tests out of feedback
    sandbox   the sandboxed kernel: launcher (``python -m cnnlib.grading.autograde.sandbox``),
              its kernel manager, per-learner folders, uids, rlimits and namespaces
    cli       the ``cnn-grade`` command: autograde a whole class, export grades, feedback

These modules run learners' notebooks; the checks in :mod:`cnnlib.grading` run inside them.
"""
