#!/usr/bin/python
"""Ansible module: everything a kit service's run needs to know about its host, in one look."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.llmobs_config_tree import differences, owner_ids, wanted_files

DOCUMENTATION = r"""
module: llmobs_compose_state
short_description: Compare a kit service's configuration, Compose project, image and container with what they should be
description:
  - Read-only; one module run (one round trip to the host) tells whether the image is on the host, which
    configuration and project files differ from the rendering, whether the docker network exists and
    whether the container runs on the image. compose_service skips everything else when nothing differs.
  - Files are compared as llmobs_config_dir writes them (content, mode, owner and group).
options:
  image: {description: The image the service runs, type: str, required: true}
  config:
    description: The configuration tree (C(config/)), as llmobs_config_dir takes it (pruned).
    type: dict
    required: true
  project:
    description: The Compose project files (definition, override, C(.env)), not pruned.
    type: dict
    required: true
  network: {description: Docker network the service joins, type: str, required: true}
  container: {description: Name of the service's container, type: str, required: true}
author: llm-observability-stack
"""

RETURN = r"""
image_id: {description: Id of the image on the host, empty when it is missing, type: str, returned: always}
config: {description: Configuration files that differ (written) or are extra (removed), type: dict, returned: always}
project: {description: Project files that differ, type: list, returned: always}
network: {description: Whether the docker network exists, type: bool, returned: always}
container: {description: The container's image id and status, empty when there is none, type: str, returned: always}
"""

_TREE = {"path": {"type": "path", "required": True}, "files": {"type": "dict", "default": {}},
         "secret_files": {"type": "dict", "default": {}, "no_log": True},
         "owner": {"type": "str", "default": "root"}, "group": {"type": "str", "default": "root"},
         "mode": {"type": "str", "default": "0644"}, "secret_mode": {"type": "str", "default": "0640"}}


def _differs(tree: dict, prune: bool) -> tuple[list[str], list[str]]:
    root = os.path.realpath(tree["path"])
    uid, gid = owner_ids(tree["owner"], tree["group"])
    to_write, removed = differences(root, wanted_files(tree["files"], tree["secret_files"], tree["mode"],
                                                       tree["secret_mode"]), uid, gid, prune)
    return [entry[0] for entry in to_write], removed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "image": {"type": "str", "required": True},
            "config": {"type": "dict", "required": True, "options": _TREE},
            "project": {"type": "dict", "required": True, "options": _TREE},
            "network": {"type": "str", "required": True},
            "container": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params

    def docker(kind: str, template: str, name: str) -> str:
        rc, out, _ = module.run_command(["docker", kind, "inspect", "--format", template, name])
        return out.strip() if rc == 0 else ""

    written, removed = _differs(p["config"], prune=True)
    project, _ = _differs(p["project"], prune=False)
    module.exit_json(changed=False, image_id=docker("image", "{{.Id}}", p["image"]),
                     config={"written": written, "removed": removed}, project=project,
                     network=docker("network", "{{.Id}}", p["network"]) != "",
                     container=docker("container", "{{.Image}} {{.State.Status}}", p["container"]))


if __name__ == "__main__":
    main()
