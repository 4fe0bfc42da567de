"""Errors that name the bad field and say how to fix it, shared by every generator and check."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigError(ValueError):
    """Bad input: `field` is the dotted path, `problem` what is wrong, `fix` what to do."""

    def __init__(self, field: str, problem: str, fix: str, source: str | None = None):
        self.field, self.problem, self.fix, self.source = field, problem, fix, source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{field}: {problem}. Fix: {fix}")


class ConfigErrors(ConfigError):
    """Several ConfigErrors reported at once, so a user fixes them in one go."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.field, first.problem, first.fix, first.source)
        self.args = ("\n".join(str(e) for e in errors),)


def _dotted(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


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
