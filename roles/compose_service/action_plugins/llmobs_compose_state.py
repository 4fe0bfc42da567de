"""Action plugin of the llmobs_compose_state module: the module's one read-only look at the host, and what it
found recorded, on the controller, in the host's compose_service_results fact in the same task (a set_fact
task after the look cost a task per service: each costs about the same, whatever it does).

`record` ({service, results}: the service's name and the fact as it is) stays on the controller; the rest
goes to the module. The service's entry: running (its image is on the host), config_changed and started
(false until the steps after the look change them) and state (what the look found).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

_FOUND = ("image_id", "config", "project", "network", "container")


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        record = module_args.pop("record")
        result.update(self._execute_module(module_name="llmobs_compose_state", module_args=module_args,
                                           task_vars=task_vars))
        if not result.get("failed"):
            entry = {"running": len(result["image_id"]) > 0, "config_changed": False, "started": False,
                     "state": {key: result[key] for key in _FOUND}}
            result["ansible_facts"] = {"compose_service_results": {**record["results"], record["service"]: entry}}
        return result
