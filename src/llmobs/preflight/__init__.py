"""GPU host preflight: parse the NVIDIA stack's tool output and judge whether a host is ready.

`plan()` validates the role's variables, `judge()` turns a probe of a host into verdicts; the Ansible
filters in ansible/filter_plugins/llmobs.py are thin wrappers around both.
"""

from llmobs.preflight.checks import CHECKS, Probe, judge
from llmobs.preflight.parsers import QUERY_FIELDS, QUERY_FORMAT
from llmobs.preflight.variables import plan, validate_variables

__all__ = ["CHECKS", "QUERY_FIELDS", "QUERY_FORMAT", "Probe", "judge", "plan", "validate_variables"]
