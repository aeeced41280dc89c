"""What callqa writes holds what customers said: owner-only unless the configuration shares it with a group.

`restrict_outputs` sets the process's umask when a command or flow starts, so every file and folder
created afterwards (the DuckDB file, reports, review MP3s, exports, batch summaries, the files that
replace them atomically) is 0600 / 0700 (0640 / 0750 with `[privacy] group_readable = true`), and
tightens what an earlier version left readable to others: the database file, and the reports
folder itself (a closed folder keeps others out of everything under it, without walking it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import Settings

OWNER_ONLY = 0o077
GROUP_READABLE = 0o027


def umask_for(settings: Settings) -> int:
    return GROUP_READABLE if settings.privacy.group_readable else OWNER_ONLY


def restrict_process(settings: Settings) -> int:
    """From now on new files and folders of this process are owner-only (or group-readable, as
    configured); the database and the reports folder are tightened. The umask before, returned."""
    mask = umask_for(settings)
    previous = os.umask(mask)
    tighten(settings.db, mask)
    tighten(settings.db.with_name(settings.db.name + ".wal"), mask)
    tighten(settings.reports_dir, mask)
    return previous


@contextmanager
def restrict_outputs(settings: Settings) -> Iterator[None]:
    """`restrict_process` for the block only (tests call the CLI in-process)."""
    previous = restrict_process(settings)
    try:
        yield
    finally:
        os.umask(previous)


def tighten(path: Path, mask: int) -> None:
    """Remove the permission bits `mask` forbids from `path` where this user owns it; a missing
    path, a link or someone else's file is left alone."""
    try:
        info = path.lstat()
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & mask:
        try:
            path.chmod(mode & ~mask)
        except OSError:
            return
