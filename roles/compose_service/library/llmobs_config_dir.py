#!/usr/bin/python
"""Ansible module: make a directory hold exactly a given set of files, in one step."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.llmobs_config_tree import apply, differences, outside, owner_ids, wanted_files

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
    uid, gid = owner_ids(p["owner"], p["group"])
    wanted = wanted_files(p["files"], p["secret_files"], p["mode"], p["secret_mode"])
    for relative in outside(root, wanted):
        module.fail_json(msg=f"{relative} is outside {root}")
    to_write, removed = differences(root, wanted, uid, gid, p["prune"])
    diffs = [{"before_header": os.path.join(root, relative), "after_header": os.path.join(root, relative),
              "before": (before or b"").decode(errors="replace"), "after": data.decode(errors="replace")}
             for relative, data, _, secret, before in to_write if module._diff and not secret and before != data]
    if not module.check_mode:
        apply(root, to_write, removed, uid, gid)
    module.exit_json(changed=bool(to_write or removed), written=[entry[0] for entry in to_write], removed=removed,
                     diff=diffs)


if __name__ == "__main__":
    main()
