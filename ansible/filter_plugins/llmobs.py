"""Ansible filters of the deployment roles: thin wrappers that call the llmobs package on the controller.

Each filter takes plain inventory data, calls the package function of the same purpose and returns
its result; a ConfigError (bad input, naming the field and the fix) becomes an AnsibleFilterError, so
the play stops with that message before anything is written on a host.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.vars.hostvars import HostVars

try:
    from llmobs import deploy
    from llmobs.errors import ConfigError
    from llmobs.roles import plain
except ImportError as error:  # pragma: no cover - depends on the controller's Python
    raise AnsibleFilterError(
        "the llmobs package is not importable by this ansible-playbook: run it from the kit's virtual "
        f"environment (.venv/bin/ansible-playbook) or `pip install` the kit there ({error})"
    ) from error


def _plain(value: Any) -> Any:
    """Plain Python data for the package; `hostvars` stays Ansible's lazy mapping, of which the package
    reads (and so templates) only the variables it needs."""
    return value if isinstance(value, HostVars) else plain(value)


def _wrap(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*map(_plain, args), **{key: _plain(value) for key, value in kwargs.items()})
        except ConfigError as error:
            raise AnsibleFilterError(str(error)) from None

    return filter_


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {f"llmobs_{name}": _wrap(function) for name, function in deploy.FILTERS.items()}
