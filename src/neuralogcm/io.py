"""Atomic writes: every output appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from neuralogcm.errors import UserError

#: Signals that end the process by default (Slurm's time limit, a closed terminal): while an
#: atomic write runs they raise SystemExit(128 + signal), so its temporary is removed.
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _exit(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _exit_on_signals() -> Iterator[None]:
    """Turn :data:`CLEANUP_SIGNALS` into SystemExit inside the block, where they would kill the
    process without cleanup (default handler, main thread); a handler set by someone else (the
    trainer's save-and-exit) is left alone."""
    installed = {}
    if threading.current_thread() is threading.main_thread():
        installed = {s: signal.signal(s, _exit) for s in CLEANUP_SIGNALS
                     if signal.getsignal(s) == signal.SIG_DFL}
    try:
        yield
    finally:
        for s, handler in installed.items():
            signal.signal(s, handler)


#: Bytes free below which a failed write is put down to a full disk: netCDF/HDF5 and torch
#: report one as a RuntimeError without errno.
_FULL_BYTES = 2**20


def _no_space(err: BaseException, folder: Path) -> bool:
    """Whether ``err`` (or an exception it was raised from) is a full disk or quota, or the
    write failed with ``folder``'s file system (nearly) full."""
    if isinstance(err, Exception) and shutil.disk_usage(folder).free < _FULL_BYTES:
        return True
    while err is not None:
        if isinstance(err, OSError) and err.errno in _NO_SPACE:
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, sweep: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling ``.{name}.tmp-*`` of ``path`` to write to (a file or a directory
    such as a zarr store); on success it replaces ``path`` in one rename, on any error, SIGTERM
    or SIGHUP it is removed and ``path`` is left as it was.

    With ``sweep`` (one writer per output, as Snakemake runs jobs), temporaries of ``path`` left
    by a killed earlier attempt are removed first; a cache that several jobs may write at once
    passes ``sweep=False``. A full disk raises :class:`UserError` naming ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
            _remove(stale)
    tmp = final.with_name(f".{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with _exit_on_signals():
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"nothing was written to {tmp} for {final}")
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(tmp, final)
    except BaseException as err:
        full = _no_space(err, final.parent)  # before the partial write is removed
        _remove(tmp)
        if full:
            raise UserError(f"{final}: no space left on the device (or quota exceeded) while "
                            f"writing it; the partial write was removed, {final.name} is as it "
                            f"was: {err}") from None
        raise
