"""Imports the llmobs package once, in ansible-playbook's own process, before the first task; adds no variables.

Every task runs in a worker process that ansible-playbook forks, and a worker inherits the modules its
parent has imported. The first template of a task that uses any filter loads every filter plugin, and
the kit's (filter_plugins/llmobs.py) imports the llmobs package, which takes 0.7-1.4 s on a 2-core
machine. The parent loads filter plugins only to template a task name that uses a filter, which a run that
changes nothing never shows: without this plugin each of its tasks paid that import in its worker.
"""

from __future__ import annotations

import contextlib

from ansible.plugins.vars import BaseVarsPlugin

# Without the package the filter plugin says how to fix it, should a task use one of its filters.
with contextlib.suppress(ImportError):
    import llmobs.deploy  # noqa: F401 - imported for the workers to inherit


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = False

    def get_vars(self, loader, path, entities, cache=True):
        return {}
