"""Grading notes: why a submission lost points, in words a human can read.

The plug-ins and the judge record them on the notebook's metadata (key :data:`META`); cnn-grade
reads them for its summary and the feedback shows them.
"""

from __future__ import annotations

META = "cnnlib_grading"  # notebook metadata key holding the notes


def add_note(nb, kind: str, message: str, log=None, cell: str | None = None) -> None:
    """Record a grading note on the notebook (once), and log it as a warning."""
    meta = nb.metadata.setdefault(META, {})
    notes = meta.setdefault("notes", [])
    note = {"kind": kind, "message": message}
    if cell:
        note["cell"] = cell
    if note not in notes:
        notes.append(note)
    if log is not None:
        log.warning("%s: %s", kind, message)


def notes_of(nb) -> list[dict]:
    """The notes recorded on a notebook."""
    return list(nb.metadata.get(META, {}).get("notes", []))
