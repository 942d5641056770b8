"""One oracle event, one atomic state transition.

An event of a :class:`~kt_predictive.PredictiveOracle` (a trial created, a report that
decides something, a trial ended, a trial sent to another worker) changes several files of
the search folder: trial records, keras-tuner's ``trial.json`` files, ``oracle.json``, and
the early checkpoints it releases. A kill between two of those writes would leave a state no
rerun repairs (a deleted checkpoint that a still-running continuation needs, an allocation
update lost). So an event's files are first written together, as one :class:`Transition`, to
``transition.json`` (one atomic rename: the commit point), then to their own places; the
released checkpoints are deleted only after that, and ``transition.json`` is removed last.
Reloading a folder that still holds ``transition.json`` applies it again (redo logging: every
step is idempotent), so a kill at any write leaves either the state before the event or the
state after it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kt_predictive.storage import read_json, remove_file, sync_folder, write_json

#: The committed transition not yet applied, in the search folder.
TRANSITION_FILE = "transition.json"


@dataclasses.dataclass
class Transition:
    """What one oracle event changes in a search folder.

    Attributes:
        files: The new content of each file it writes (JSON), by path relative to the
            search folder.
        released: Trials whose early checkpoints it releases (deleted once the files are
            written).
    """

    files: dict[str, Any] = dataclasses.field(default_factory=dict)
    released: list[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "released": self.released}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transition:
        return cls(files=dict(data["files"]), released=list(data["released"]))


Release = Callable[[list[str]], None] | None


def commit(folder: str | os.PathLike, transition: Transition, release: Release) -> None:
    """Makes ``transition`` durable in ``folder``, then applies it.

    One file and nothing released is written as it is (a single rename is atomic already).
    ``release(trial_ids)`` deletes the released checkpoints (``None`` keeps them).
    """
    folder = Path(folder)
    if len(transition.files) <= 1 and not transition.released:
        for name, content in transition.files.items():
            write_json(folder / name, content)
        return
    write_json(folder / TRANSITION_FILE, transition.to_json())
    sync_folder(folder)  # the commit point: durable before anything it replaces is touched
    _apply(folder, transition, release)


def recover(folder: str | os.PathLike, release: Release, recovery: str) -> bool:
    """Applies the transition a killed process committed in ``folder`` and did not finish;
    returns whether there was one.

    Args:
        recovery: What the user can do about an unreadable transition file.
    """
    path = Path(folder) / TRANSITION_FILE
    if not path.exists():
        return False
    _apply(Path(folder), Transition.from_json(read_json(path, recovery)), release)
    return True


def _apply(folder: Path, transition: Transition, release: Release) -> None:
    for name, content in transition.files.items():
        write_json(folder / name, content)
    if transition.released and release is not None:
        release(transition.released)
    remove_file(folder / TRANSITION_FILE)
