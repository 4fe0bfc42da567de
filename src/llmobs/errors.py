"""Errors that name the bad field and say how to fix it, shared by every generator and check; and the one
error for a service that does not answer."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

TOP_LEVEL = "(top level)"
Rename = str | Mapping[str, str]  # a prefix, or {field prefix: what the user calls it}


class ConfigError(ValueError):
    """Bad input: `field` is the dotted path, `problem` what is wrong, `fix` what to do."""

    def __init__(self, field: str, problem: str, fix: str, source: str | None = None):
        self.field, self.problem, self.fix, self.source = field, problem, fix, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}. Fix: {fix}")

    @property
    def all(self) -> list[ConfigError]:
        """This error, or each of several."""
        return [self]

    def renamed(self, rename: Rename, fix: str | None = None) -> ConfigError:
        """The same error(s) with each field named as the user wrote it: `rename` is a prefix (the
        variable that held the data, e.g. `llmobs_settings`), or a mapping from field prefixes to names
        (`{"ports.node": "node_exporter_port", "": "hosts"}`: the longest matching prefix wins, `""` is
        the prefix of every other field). `fix`, when given, replaces the fix."""
        errors = [ConfigError(_rename(e.field, rename), e.problem, fix or e.fix, e.source) for e in self.all]
        return errors[0] if len(errors) == 1 else ConfigErrors(errors)


class ConfigErrors(ConfigError):
    """Several ConfigErrors reported at once, so a user fixes them in one go."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.field, first.problem, first.fix, first.source)
        self.args = ("\n".join(str(e) for e in errors),)

    @property
    def all(self) -> list[ConfigError]:
        return list(self.errors)


class UnreachableError(RuntimeError):
    """A service did not answer (connection refused, timeout, unknown host): not bad input, so no field."""

    def __init__(self, url: str, reason: str, hint: str):
        self.url, self.reason, self.hint = url, reason, hint
        super().__init__(f"{url} does not answer: {reason}. {hint}")


def _join(prefix: str, field: str) -> str:
    if field == TOP_LEVEL or not field:
        return prefix
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def _rename(field: str, rename: Rename) -> str:
    if isinstance(rename, str):
        return _join(rename, field)
    matching = [key for key in rename if key and (field == key or field.startswith((f"{key}.", f"{key}[")))]
    if matching:
        key = max(matching, key=len)
        return rename[key] + field[len(key):]
    return _join(rename[""], field) if "" in rename else field


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or TOP_LEVEL


def _fix_for(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "remove it or check its spelling against docs/configuration.md"
    if kind == "missing":
        return "add it"
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return f"use one of {ctx['expected']}"
    return f"give a value that satisfies: {error['msg'][0].lower()}{error['msg'][1:]}"


def from_validation_error(error: ValidationError, source: str | None = None) -> ConfigErrors:
    """Turn pydantic's report into ConfigErrors that name each field and its fix."""
    errors = []
    for item in error.errors(include_url=False):
        got = item.get("input")
        problem = item["msg"]
        if item["type"] != "missing" and not isinstance(got, dict | list):
            problem += f" (got {got!r})"
        errors.append(ConfigError(_dotted(item["loc"]), problem, _fix_for(item), source))
    return ConfigErrors(errors)
