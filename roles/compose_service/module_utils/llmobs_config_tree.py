"""What the kit's modules share: compare a directory with the files it should hold, and make it hold them.

llmobs_config_dir writes a tree; llmobs_compose_state only compares (a run that changes nothing looks once).
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile


def owner_ids(owner: str, group: str) -> tuple[int, int]:
    """uid and gid of an owner and a group given by name or number."""
    def _id(lookup, name: str) -> int:
        return int(name) if name.isdigit() else lookup(name)[2]
    return _id(pwd.getpwnam, owner), _id(grp.getgrnam, group)


def wanted_files(files: dict, secret_files: dict, mode: str, secret_mode: str) -> dict[str, tuple[bytes, int, bool]]:
    """Relative path -> (content, mode, secret)."""
    def _data(content) -> bytes:
        return (content if isinstance(content, str) else str(content)).encode()
    return {**{k: (_data(v), int(mode, 8), False) for k, v in files.items()},
            **{k: (_data(v), int(secret_mode, 8), True) for k, v in secret_files.items()}}


def outside(root: str, wanted: dict) -> list[str]:
    """The relative paths that would land outside root."""
    base = root.rstrip(os.sep) + os.sep
    return [relative for relative in wanted if not os.path.realpath(os.path.join(root, relative)).startswith(base)]


def differences(root: str, wanted: dict, uid: int, gid: int, prune: bool) -> tuple[list, list[str]]:
    """(files to write as (relative, content, mode, secret, content before or None), files to remove)."""
    to_write = []
    for relative, (data, mode, secret) in sorted(wanted.items()):
        target = os.path.join(root, relative)
        try:
            with open(target, "rb") as handle:
                before = handle.read()
            stat = os.stat(target)
            owned = (stat.st_uid, stat.st_gid) == (uid, gid) or os.geteuid() != 0
            if before == data and stat.st_mode & 0o7777 == mode and owned:
                continue
        except FileNotFoundError:
            before = None
        to_write.append((relative, data, mode, secret, before))
    removed = []
    if prune and os.path.isdir(root):
        for directory, _, names in os.walk(root):
            relatives = (os.path.relpath(os.path.join(directory, name), root) for name in names)
            removed += [relative for relative in relatives if relative not in wanted]
    return to_write, sorted(removed)


def _chown(path: str, uid: int, gid: int) -> None:
    if os.geteuid() == 0:  # a user without root (a lab) keeps its own files, readable by the container
        os.chown(path, uid, gid)


def make_dirs(directory: str, uid: int, gid: int) -> None:
    """mkdir -p, giving the directories it creates the files' owner and group."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for new in reversed(missing):
        os.mkdir(new, 0o755)
        _chown(new, uid, gid)


def apply(root: str, to_write: list, removed: list[str], uid: int, gid: int) -> None:
    """Write each file atomically (a temporary file renamed over it), remove the others."""
    make_dirs(root, uid, gid)
    for relative, data, mode, _, _ in to_write:
        target = os.path.join(root, relative)
        make_dirs(os.path.dirname(target), uid, gid)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".llmobs-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, mode)
        _chown(temporary, uid, gid)
        os.replace(temporary, target)
    for relative in removed:
        os.unlink(os.path.join(root, relative))
