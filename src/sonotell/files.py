"""How sonotell writes files: atomically, with the user's umask, never onto its inputs, one run per folder.

* ``atomic_path`` / ``write_text`` / ``write_json`` / ``write_bytes``: write to a temporary name
  in the same folder, then rename; a crash never leaves a half-written artifact under the final
  name. The file gets the permissions any other tool would give it (``0666 & ~umask``), not
  the 0600 of a temporary file. A full disk becomes one ``OutputError`` line naming the file.
* ``refuse_overwriting_inputs(outputs, inputs)``: every command calls it before writing, so an
  ``--out`` that is (or links to) one of its inputs is refused instead of destroying it.
* ``output_lock(out, command)``: one run at a time per output folder / file; a second one is refused.
  With ``command``, the folder is also *claimed* (``claim_output``): it records which command made
  it, and another command refuses it instead of replacing its files.
* ``file_lock(path)``: a blocking lock held across processes (two review servers on one folder).
* ``check_run_fingerprint(folder, fingerprint, overwrite=...)``: a folder holds the outputs of one
  configuration; a run with another one is refused unless ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sonotell.errors import OutputError

LOCK_NAME = ".sonotell.lock"
RUN_RECORD_NAME = ".sonotell-run.json"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere: set and restore at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The file ends with mode ``0666 & ~umask``. Raises ``OutputError`` (earlier outputs intact)
    when the disk is full.

    Example:
        >>> with atomic_path("out.npy") as tmp:  # doctest: +SKIP
        ...     np.save(tmp, x)
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise _output_error(path, e) from None
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            if tmp_path.is_file():
                os.chmod(tmp_path, 0o666 & ~current_umask())
            os.replace(tmp_path, path)
        except OSError as e:
            if e.errno in _DISK_FULL:
                raise _output_error(path, e) from None
            raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _output_error(path: Path, e: OSError) -> OutputError:
    if e.errno in _DISK_FULL:
        return OutputError(path, "could not be written: no space left on device (earlier outputs are intact)")
    return OutputError(path, f"could not be written ({e.strerror or e})")


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------- inputs are never outputs


def _identity(p: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path (symlinks followed) and, when it exists, its (device, inode) for hard links."""
    resolved = p.resolve()
    try:
        st = resolved.stat()
        return resolved, (st.st_dev, st.st_ino)
    except OSError:
        return resolved, None


def refuse_overwriting_inputs(outputs: Iterable[str | Path | None], inputs: Iterable[str | Path | None]) -> None:
    """Raise ``OutputError`` when an output path resolves (symlinks, hard links) to one of the inputs.

    ``outputs`` are files or folders a command will write; ``inputs`` are the files and folders it
    reads (for an input folder, pass the media files found in it too: writing a manifest inside a
    scan folder is fine, writing it over a scan is not). An output *folder* that is an input
    file, or an output file that is an input folder, is refused as well. ``None`` entries are
    ignored, so optional options can be passed as they are.

    Example:
        >>> refuse_overwriting_inputs(["a.wav"], ["a.wav"])  # doctest: +SKIP
        OutputError: a.wav: is an input of this command (a.wav); choose another output path
    """
    by_path: dict[Path, Path] = {}
    by_inode: dict[tuple[int, int], Path] = {}
    for src in (Path(p) for p in inputs if p is not None):
        resolved, inode = _identity(src)
        by_path.setdefault(resolved, src)
        if inode is not None:
            by_inode.setdefault(inode, src)
    for out in (Path(p) for p in outputs if p is not None):
        resolved, inode = _identity(out)
        src = by_path.get(resolved) or (by_inode.get(inode) if inode is not None else None)
        if src is not None:
            raise OutputError(out, f"is an input of this command ({src}); choose another output path")


# --------------------------------------------------------------------------- one run per output


def lock_path_for(out: str | Path) -> Path:
    """The lock file of an output: ``<folder>/.sonotell.lock`` for a folder, ``.<name>.lock`` beside a file."""
    out = Path(out)
    if _is_folder_output(out):
        return out / LOCK_NAME
    return out.with_name(f".{out.name}.lock")


def _is_folder_output(out: Path) -> bool:
    return out.is_dir() or (not out.exists() and not out.suffix)


@contextlib.contextmanager
def output_lock(out: str | Path, command: str | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder or file for the block; refuse when another run holds it.

    The lock is advisory (``fcntl.flock``) and released by the OS when the holder dies, so a
    killed run never leaves a folder locked. Without ``fcntl`` (not POSIX) it is a no-op.
    ``command`` (e.g. ``"sonotell predict"``): claim a folder output for that command under the
    lock (``claim_output``), so one command never writes into the folder of another. A folder
    this call created is removed again when the block fails before writing anything into it.

    Example:
        >>> with output_lock("labels/", "sonotell label"):  # doctest: +SKIP
        ...     label_scans(...)
    """
    lock = lock_path_for(out)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        if command is not None:
            claim_output(out, command)
        yield lock
        return
    new_folder = lock.name == LOCK_NAME and not lock.parent.exists()
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a+")  # noqa: SIM115  (held open for the whole block below)
    except OSError as e:
        raise _output_error(lock, e) from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise OutputError(
                out, f"another sonotell run ({holder}) is writing here; wait for it to finish or choose another output"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            if command is not None:
                claim_output(out, command)
            yield lock
        except BaseException:
            if new_folder:  # a refused or failed run leaves no empty output folder behind
                _remove_if_unused(lock.parent)
            raise
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove_if_unused(folder: Path) -> None:
    """Remove ``folder`` when it holds nothing but its lock and run record."""
    try:
        if {p.name for p in folder.iterdir()} <= {LOCK_NAME, RUN_RECORD_NAME}:
            for name in (LOCK_NAME, RUN_RECORD_NAME):
                (folder / name).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass


def _read_record(record: Path) -> dict:
    try:
        doc = json.loads(record.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def output_owner(folder: str | Path) -> str | None:
    """The command that made an output folder (its run record), or None for a folder without one."""
    doc = _read_record(Path(folder) / RUN_RECORD_NAME)
    owner = doc.get("command") or doc.get("what")  # "what": records written before commands were named
    return owner if isinstance(owner, str) and owner else None


def claim_output(out: str | Path, command: str) -> None:
    """Record in a folder output that ``command`` writes it; refuse a folder another command made.

    The record is ``<folder>/.sonotell-run.json`` (``{"command": ...}``, beside the fingerprint of
    ``check_run_fingerprint``). The same command may write again (resume, rerun); any other one
    gets an ``OutputError`` naming the owner, before it writes anything. A file output (a path
    with a suffix) is not claimed. Call it while holding ``output_lock(out)`` (``output_lock(out,
    command)`` does both).

    Example:
        >>> claim_output("labels/", "sonotell predict")  # doctest: +SKIP
        OutputError: labels: holds the outputs of `sonotell label`; `sonotell predict` does not write
        into another command's folder: choose another output folder
    """
    out = Path(out)
    if not _is_folder_output(out):
        return
    record = out / RUN_RECORD_NAME
    owner = output_owner(out)
    if owner is not None and owner != command:
        raise OutputError(
            out,
            f"holds the outputs of `{owner}`; `{command}` does not write into another command's folder: "
            "choose another output folder",
        )
    doc = _read_record(record)
    if doc.get("command") != command:
        write_json(record, {**doc, "command": command})


@contextlib.contextmanager
def file_lock(path: str | Path, *, timeout_s: float = 30.0) -> Iterator[Path]:
    """Wait for an exclusive lock on ``path`` (created if absent) and hold it for the block.

    Unlike ``output_lock`` (which refuses a second run), this waits: it serialises short
    read-change-write updates of one file across threads *and* processes (each holder opens its
    own descriptor, and ``flock`` locks conflict between descriptors). After ``timeout_s`` it
    raises ``OutputError``. A no-op without ``fcntl``.
    """
    path = Path(path)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield path
        return
    try:
        f = open(path, "a+")  # noqa: SIM115  (held open for the whole block below)
    except OSError as e:
        raise _output_error(path, e) from None
    with f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OutputError(path, f"still locked by another process after {timeout_s:g} s") from None
                time.sleep(0.005)
        try:
            yield path
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_run_fingerprint(folder: str | Path, fingerprint: str, *, overwrite: bool = False, what: str = "") -> None:
    """Refuse to mix runs: ``folder`` keeps the fingerprint of the configuration that wrote it.

    A first run records ``fingerprint`` in ``<folder>/.sonotell-run.json``; a later run with the
    same one proceeds (resume); a different one raises ``OutputError`` unless ``overwrite``, in
    which case the new fingerprint is recorded. Call it while holding ``output_lock(folder)``.
    """
    folder = Path(folder)
    record = folder / RUN_RECORD_NAME
    doc = _read_record(record)
    if not overwrite:
        previous = doc.get("fingerprint")
        if previous is not None and previous != fingerprint:
            raise OutputError(
                folder,
                f"holds outputs of another configuration (fingerprint {previous}, this run {fingerprint}); "
                "pass --overwrite to replace them, or choose another output folder",
            )
    write_json(record, {**doc, "fingerprint": fingerprint, "what": what})  # keeps the claim (``command``)
