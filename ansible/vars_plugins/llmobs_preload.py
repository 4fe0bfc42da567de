"""Imports the llmobs package and loads its catalog once, in ansible-playbook's own process, before the first
task; adds no variables.

Every task runs in a worker process that ansible-playbook forks, and a worker inherits the modules its
parent has imported and what they have loaded. The first template of a task that uses any filter loads every
filter plugin, and the kit's (filter_plugins/llmobs.py) imports the llmobs package, which takes 0.7-1.4 s on a
2-core machine. The parent loads filter plugins only to template a task name that uses a filter, which a run
that changes nothing never shows: without this plugin each of its tasks paid that import in its worker.
Likewise each filter that reads the catalog (the settings' checks, every generator, `llmobs_tracing_enabled`
in the conditions of site.yml's plays) parsed and validated its YAML again in each worker, 0.35-0.55 s a task
here (llmobs.catalog.load caches it per process).
"""

from __future__ import annotations

import contextlib

from ansible.plugins.vars import BaseVarsPlugin

try:
    import llmobs.deploy  # noqa: F401 - imported for the workers to inherit
    from llmobs import catalog
    from llmobs.errors import ConfigError
except ImportError:  # without the package the filter plugin says how to fix it, should a task use a filter
    pass
else:
    # A catalog that does not validate is left to the first filter that reads it, which names the field.
    with contextlib.suppress(ConfigError):
        catalog.load()


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = False

    def get_vars(self, loader, path, entities, cache=True):
        return {}
