"""The kit's one template mechanism: Jinja with angle delimiters.

`<< name >>` fills in a value, `<% if ... %>` is a statement, `<# ... #>` a comment, so the `{{ ... }}` of
Prometheus' annotation templates, Alertmanager's Go templates and Grafana's legends pass through
untouched. The catalog's recording rules and alerts (`<< host >>`, `<< t.name >>`), the Alertmanager
notification templates and the generated Markdown all render through `ENV`; an undefined name is an
error (StrictUndefined), never an empty string.
"""

from __future__ import annotations

from typing import Any

import jinja2

from llmobs.errors import ConfigError

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("llmobs", "templates"),
    variable_start_string="<<", variable_end_string=">>",
    block_start_string="<%", block_end_string="%>",
    comment_start_string="<#", comment_end_string="#>",
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True, trim_blocks=True,
    lstrip_blocks=True,
    finalize=lambda value: f"{value:g}" if isinstance(value, float) else value,  # 5.0 -> 5
)


def render(text: str, context: dict[str, Any], field: str, source: str,
           fix: str = "use only the names listed at the top of the file") -> str:
    """`text` rendered; a template error names the field, the source file and the fix."""
    try:
        return ENV.from_string(text).render(context)
    except jinja2.TemplateError as error:
        raise ConfigError(field, f"template error: {error}", fix, source) from None


def render_file(name: str, context: dict[str, Any]) -> str:
    """The package template `src/llmobs/templates/<name>`, rendered."""
    return ENV.get_template(name).render(context)
