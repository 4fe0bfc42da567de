#!/usr/bin/python
"""Ansible module: make a directory hold exactly a given set of files, in one step."""

from __future__ import annotations

import grp
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: llmobs_config_dir
short_description: Make a directory hold exactly the given files (configuration of a kit service)
description:
  - Writes each file whose content differs (atomically, with the given owner, group and mode), creates
    O(path) and the subdirectories the files need and, with O(prune), removes every other file under O(path).
  - One module run for a whole configuration tree (rules, targets, dashboards), instead of one task per file.
  - Supports check mode and diff mode; files passed in O(secret_files) are never shown in a diff.
options:
  path: {description: Directory to fill, type: path, required: true}
  files: {description: Path relative to O(path) to content, type: dict, default: {}}
  secret_files: {description: Like O(files), never logged or diffed, type: dict, default: {}}
  owner: {description: Owner of files and directories, type: str, default: root}
  group: {description: Group of files and directories (the service's container group), type: str, default: root}
  mode: {description: Mode of O(files), type: str, default: "0644"}
  secret_mode: {description: Mode of O(secret_files), type: str, default: "0640"}
  prune: {description: Remove files under O(path) that are not given, type: bool, default: true}
author: llm-observability-stack
"""

RETURN = r"""
written: {description: Files written (relative paths), type: list, returned: always}
removed: {description: Files removed (relative paths), type: list, returned: always}
"""

def _id(lookup, name: str) -> int:
    return int(name) if name.isdigit() else lookup(name)[2]


def _chown(path: str, uid: int, gid: int) -> None:
    if os.geteuid() == 0:  # a user without root (a lab) keeps its own files, readable by the container
        os.chown(path, uid, gid)


def _make_dirs(directory: str, uid: int, gid: int) -> None:
    """mkdir -p, giving the directories it creates the files' owner and group."""
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for new in reversed(missing):
        os.mkdir(new, 0o755)
        _chown(new, uid, gid)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "files": {"type": "dict", "default": {}},
            "secret_files": {"type": "dict", "default": {}, "no_log": True},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str", "default": "0644"},
            "secret_mode": {"type": "str", "default": "0640"},
            "prune": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    root = os.path.realpath(p["path"])
    uid, gid = _id(pwd.getpwnam, p["owner"]), _id(grp.getgrnam, p["group"])
    wanted = {**{k: (v, int(p["mode"], 8), False) for k, v in p["files"].items()},
              **{k: (v, int(p["secret_mode"], 8), True) for k, v in p["secret_files"].items()}}
    for relative in wanted:
        target = os.path.realpath(os.path.join(root, relative))
        if not target.startswith(root + os.sep):
            module.fail_json(msg=f"{relative} is outside {root}")

    written, diffs = [], []
    if not module.check_mode:
        _make_dirs(root, uid, gid)
    for relative, (content, mode, secret) in sorted(wanted.items()):
        target = os.path.join(root, relative)
        data = (content if isinstance(content, str) else str(content)).encode()
        try:
            with open(target, "rb") as handle:
                before = handle.read()
            stat = os.stat(target)
            owned = (stat.st_uid, stat.st_gid) == (uid, gid) or os.geteuid() != 0
            same = before == data and stat.st_mode & 0o7777 == mode and owned
        except FileNotFoundError:
            before, same = None, False
        if same:
            continue
        written.append(relative)
        if module._diff and not secret and before != data:
            diffs.append({"before_header": target, "after_header": target,
                          "before": (before or b"").decode(errors="replace"), "after": data.decode(errors="replace")})
        if module.check_mode:
            continue
        _make_dirs(os.path.dirname(target), uid, gid)
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".llmobs-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, mode)
        _chown(temporary, uid, gid)
        os.replace(temporary, target)

    removed = []
    if p["prune"] and os.path.isdir(root):
        for directory, _, names in os.walk(root):
            for name in names:
                relative = os.path.relpath(os.path.join(directory, name), root)
                if relative not in wanted:
                    removed.append(relative)
                    if not module.check_mode:
                        os.unlink(os.path.join(directory, name))
    module.exit_json(changed=bool(written or removed), written=written, removed=sorted(removed), diff=diffs)


if __name__ == "__main__":
    main()
