"""Resume from the newest checkpoint that can be read, never silently from scratch.

TensorFlow's ``CheckpointManager`` trusts the small ``checkpoint`` index file: when it is
garbage the manager sees no checkpoint and a run would start again from step 0,
overwriting the older checkpoints. So checkpoints are found from their own files
(``ckpt-N.index``), tried newest first, and broken ones are set aside in ``broken/``
with a warning; a folder whose checkpoints all fail to restore is an error.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

from xsr4rs.exceptions import CheckpointWarning, InputError

_NAME = re.compile(r"ckpt-(\d+)\.index")


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(number, prefix)`` of the checkpoints in ``folder``, newest first."""
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _NAME.fullmatch(p.name)
        if m:
            found.append((int(m.group(1)), folder / f"ckpt-{m.group(1)}"))
    return sorted(found, reverse=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


def restore_newest_intact(checkpoint: Any, folder: Path) -> int | None:
    """Restore ``checkpoint`` (a ``tf.train.Checkpoint``) from the newest checkpoint of
    ``folder`` that reads completely; return its number, or ``None`` when there is none.

    Broken checkpoints newer than it are moved to ``folder/broken`` with a
    `CheckpointWarning`, and the index file is rewritten to list the intact ones.
    Raises `InputError` when checkpoints exist but none restores.
    """
    from xsr4rs._tf import import_tf

    tf = import_tf()

    found = list_checkpoints(folder)
    if not found:
        return None
    broken: list[tuple[Path, str]] = []
    for number, prefix in found:
        try:
            checkpoint.restore(str(prefix)).assert_existing_objects_matched()
        except Exception as err:  # truncated or garbage files: IndexError, OpError...
            broken.append((prefix, _first_line(err)))
            continue
        if broken:
            _set_aside(folder, broken)
            warnings.warn(
                "broken checkpoint(s) "
                + "; ".join(f"{p.name} ({why})" for p, why in broken)
                + f" moved to {folder / 'broken'}: resuming from {prefix.name}",
                CheckpointWarning,
                stacklevel=3,
            )
        intact = [str(p) for n, p in sorted(found) if n <= number and p not in dict(broken)]
        tf.compat.v1.train.update_checkpoint_state(
            str(folder), str(prefix), all_model_checkpoint_paths=intact
        )
        return number
    reasons = "; ".join(f"{p.name}: {why}" for p, why in broken[:3])
    raise InputError(
        f"none of the {len(found)} checkpoints in {folder} can be restored ({reasons}); "
        "nothing was changed. Move the run folder away (or choose another run.out) to "
        "start over"
    )


def _set_aside(folder: Path, broken: list[tuple[Path, str]]) -> None:
    target = folder / "broken"
    target.mkdir(exist_ok=True)
    for prefix, _ in broken:
        for f in folder.glob(prefix.name + ".*"):
            shutil.move(str(f), str(target / f.name))
