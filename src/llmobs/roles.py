"""What the kit's Ansible roles compute on the controller besides the generators (llmobs.deploy).

- The inventory as the prometheus and alertmanager roles read it: `inventory_hosts` turns hostvars into
  `deploy.InventoryHost` entries through HOST_VARIABLES, the one map of which host variable feeds which
  field; the same map names the variable when a field is rejected (`host_variable`).
- What the internal compose_service role derives from the `compose_service_args` a service role passes:
  the Compose override (the service file's command with this host's flags, the exporter-toolkit web
  config flag and mount, the kit's network), the secret files (`secrets/`, web.yml with bcrypt hashes,
  TLS files), the validators, the API credentials and the `.env` file.
- What site.yml checks on the controller: each role's argument spec without its defaults.
- A generated file of `llmobs generate`: a README per role from its argument specs.

Filters take plain data (ansible/filter_plugins converts Ansible's values with `plain`), except
`hostvars`, which stays Ansible's lazy mapping: only the variables named here are read, and templated.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from llmobs import templating
from llmobs.errors import ConfigError, ConfigErrors
from llmobs.settings import Settings
from llmobs.workspace import Workspace

# ---------------------------------------------------------------------------------------- plain data


def plain(value: Any) -> Any:
    """Plain Python data: ansible-core hands filters lazy, tagged containers that pydantic reads raw."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    for scalar in (bool, int, float, str):  # bool first: it is also an int
        if isinstance(value, scalar):
            return scalar(value)
    return value


def _first_set(variables: Mapping[str, Any], names: list[str], default: Any) -> Any:
    """The value of the first of `names` the host defines (templated, plain), else `default`."""
    for name in names:
        if name in variables:
            return plain(variables[name])
    return default


# ---------------------------------------------------------------------------------- inventory hosts

# deploy.InventoryHost field -> the host variable it is read from. One map for reading the inventory
# and for naming the variable behind a rejected field.
HOST_VARIABLES: dict[str, str] = {
    # else ansible_host, else the inventory name
    "address": "llmobs_scrape_address",
    # a fact of the grafana role (false where Grafana's image is missing); site.yml runs grafana before
    # prometheus, so every monitoring host has set it by the time Prometheus' targets are rendered
    "grafana": "grafana_running",
    "prober": "endpoint_prober_enabled",
    # a fact of the otel_collector role (where the site collects traces and its image could be had)
    "otelcol": "otel_collector_running",
    "labels": "llmobs_host_labels",
    "exporters": "llmobs_exporters",
    "vllm_endpoints": "vllm_endpoints",
    "endpoints": "llmobs_endpoints",
    # the GPU indexes of its engines must be below it
    "gpu_count": "gpu_preflight_expected_gpu_count",
    "ports.node": "node_exporter_port",
    "ports.dcgm": "dcgm_exporter_port",
    "ports.prometheus": "prometheus_port",
    "ports.alertmanager": "alertmanager_port",
    "ports.grafana": "grafana_port",
    "ports.prober": "endpoint_prober_port",
    "ports.otelcol": "otel_collector_metrics_port",
    "addresses.node": "node_exporter_scrape_address",
    "addresses.dcgm": "dcgm_exporter_scrape_address",
}
# What an InventoryHost field is when its host does not set the variable (ports and addresses: None).
_UNSET_FIELDS: dict[str, Any] = {"grafana": True, "prober": False, "otelcol": False,
                                 "labels": {}, "exporters": None, "vllm_endpoints": [],
                                 "endpoints": [], "gpu_count": None}
_ADDRESS_FALLBACK = ["llmobs_scrape_address", "ansible_host"]


def host_variable(field: str) -> str:
    """The host variable behind an InventoryHost field path (`ports.node` -> `node_exporter_port`)."""
    for prefix, variable in HOST_VARIABLES.items():
        if field == prefix or field.startswith((f"{prefix}.", f"{prefix}[")):
            return variable + field[len(prefix):]
    return field


def _inventory_host(name: str, variables: Mapping[str, Any], gpu: bool, monitoring: bool) -> dict[str, Any]:
    host: dict[str, Any] = {"name": name, "address": _first_set(variables, _ADDRESS_FALLBACK, name),
                            "gpu": gpu, "monitoring": monitoring, "ports": {}, "addresses": {}}
    for field, variable in HOST_VARIABLES.items():
        if field == "address":
            continue
        group, _, key = field.rpartition(".")
        value = _first_set(variables, [variable], _UNSET_FIELDS.get(field))
        (host[group] if group else host)[key] = value
    return host


def inventory_hosts(hostvars: Mapping[str, Mapping[str, Any]], gpu_hosts: list[str],
                    monitoring_hosts: list[str]) -> list[dict[str, Any]]:
    """Every GPU and monitoring host as a deploy.InventoryHost mapping, read from its host variables."""
    names = list(dict.fromkeys([*gpu_hosts, *monitoring_hosts]))
    return [_inventory_host(name, hostvars[name], name in gpu_hosts, name in monitoring_hosts) for name in names]


def alertmanager_peer_flags(hostvars: Mapping[str, Mapping[str, Any]], peers: list[str], port: int) -> list[str]:
    """`--cluster.peer` of every other monitoring host, at the address it advertises."""
    advertised = ["alertmanager_cluster_advertise_address", *_ADDRESS_FALLBACK]
    return [f"--cluster.peer={_first_set(hostvars[peer], advertised, peer)}:{port}" for peer in peers]


# ------------------------------------------------------------------------------ the compose service

_BCRYPT64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@functools.lru_cache(maxsize=64)
def _bcrypt(password: str, hostname: str) -> str:
    """bcrypt with a salt derived from the host name, so a run that changes nothing writes the same hash
    (what Ansible's password_hash('bcrypt') makes of the same salt)."""
    import bcrypt

    salt = hashlib.sha256(hostname.encode()).hexdigest()[:22]
    salt = salt[:21] + _BCRYPT64[_BCRYPT64.index(salt[21]) & 0x30]  # the last character's unused bits clear
    return bcrypt.hashpw(password.encode(), f"$2b$12${salt}".encode()).decode()


def _web_enabled(web: Mapping[str, Any]) -> bool:
    return any(web.values())


def _web_files(web: Mapping[str, Any], mount: str, hostname: str) -> dict[str, str]:
    """exporter-toolkit's web.yml (TLS, basic auth as bcrypt hashes) and the TLS files."""
    if not _web_enabled(web):
        return {}
    config: dict[str, Any] = {}
    files: dict[str, str] = {}
    if web.get("tls_cert"):
        config["tls_server_config"] = {"cert_file": f"{mount}/tls/server.crt", "key_file": f"{mount}/tls/server.key"}
        files = {"tls/server.crt": web["tls_cert"], "tls/server.key": web.get("tls_key") or ""}
    if web.get("basic_auth_users"):
        config["basic_auth_users"] = {user: _bcrypt(str(password), hostname)
                                      for user, password in web["basic_auth_users"].items()}
    return {"web.yml": yaml.safe_dump(config, indent=2, allow_unicode=True, default_flow_style=False), **files}


def _mounts(service: Mapping[str, Any], target: str) -> bool:
    """Whether the service definition mounts something at `target`."""
    targets = [volume.get("target") if isinstance(volume, Mapping) else [*str(volume).split(":"), ""][1]
               for volume in service.get("volumes") or []]
    return target in targets


def _command(defined: list[str] | str, flags: list[str]) -> list[str] | str:
    return [*defined, *flags] if isinstance(defined, list) else " ".join([defined, *flags])


def compose_service_override(args: Mapping[str, Any]) -> dict[str, Any]:
    """The Compose override of this host: the caller's `override`, the service file's command with this
    host's `flags`, the web config flag (when TLS or basic auth is on) and `extra_args` after it, the
    configuration mounted for the web config where the service file does not mount it, and the kit's
    network, which the service joins (created by the run entry point)."""
    name = args["name"]
    definition = yaml.safe_load(Path(args["definition"]).read_text(encoding="utf-8"))["services"][name]
    web = _web_enabled(args["web"])
    flags = [*args["flags"], *([f"{args['web_flag']}={args['config_mount']}/web.yml"] if web else []),
             *args["extra_args"]]
    service: dict[str, Any] = {"command": _command(definition["command"], flags)} if flags else {}
    if web and not _mounts(definition, args["config_mount"]):
        service["volumes"] = [f"{args['dir']}/config:{args['config_mount']}:ro"]
    override = dict(args["override"])
    service.update((override.pop("services", None) or {}).get(name) or {})
    return {"services": {name: service}, **override,
            "networks": {"default": {"name": args["network"], "external": True}}}


def compose_service_secret_files(args: Mapping[str, Any], hostname: str) -> dict[str, str]:
    """Files never logged or diffed: the caller's `secret_files`, the site's `secrets` under secrets/,
    and the web config."""
    return {**args["secret_files"], **{f"secrets/{name}": text for name, text in args["secrets"].items()},
            **_web_files(args["web"], args["config_mount"], hostname)}


def compose_service_validators(args: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The checks of the staged configuration: the caller's, and its `web_validator` on web.yml."""
    extra = []
    if args["web_validator"] and _web_enabled(args["web"]):
        program, *arguments = args["web_validator"]
        extra = [{"entrypoint": program, "args": [*arguments, f"{args['config_mount']}/web.yml"]}]
    return [*args["validate"], *extra]


def compose_service_api(args: Mapping[str, Any]) -> dict[str, Any]:
    """How the reload entry point reaches the service: the caller's `api`, with the first basic-auth user
    of the web config as credentials unless the caller gives its own."""
    api = dict(args["api"])
    users = args["web"].get("basic_auth_users") or {}
    if not api.get("username") and users:
        api["username"], api["password"] = next(iter(users.items()))
    return api


def compose_env_file(env: Mapping[str, Any], service: str) -> str:
    """The project's `.env`: one NAME='value' line per variable. Values with a single quote or a line
    break are refused, naming the variable (never showing the value)."""
    bad = sorted(name for name, value in env.items() if any(c in str(value) for c in "'\n\r"))
    if bad:
        problem = "contains a single quote or a line break, which a Compose .env file cannot carry"
        fix = "choose a value without them (for a password, another one)"
        raise ConfigErrors([ConfigError(f"{name} (the .env of {service})", problem, fix) for name in bad])
    return "".join(f"{name}='{value}'\n" for name, value in sorted(env.items(), key=lambda item: item[0].lower()))


# -------------------------------------------------------------------------------------- site.yml


def argument_spec_without_defaults(options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """A role's argument spec options without their `default`: what site.yml checks on the controller is
    what the inventory sets (defaults are templates that only make sense inside the role)."""
    return {name: {key: value for key, value in option.items() if key != "default"} for name, option in options.items()}


# ------------------------------------------------------------------------------ generated: READMEs

# Roles whose tasks carry their own tags (compose_service's run under its caller's).
_TAGGED = ("prometheus", "alertmanager", "grafana", "node_exporter", "dcgm_exporter", "docker_host", "gpu_preflight",
           "lab_simulators", "victoria_metrics", "otel_collector")


def _markdown(text: Any, paragraphs: str = "\n\n") -> str:
    """ansible-doc markup (C(), O(), V(), I(), B(), U()) as Markdown; a list's items joined by `paragraphs`."""
    if isinstance(text, list):
        return paragraphs.join(_markdown(item) for item in text)
    text = " ".join(str(text).split())
    text = re.sub(r"\b[COVE]\(([^()]*(?:\([^()]*\)[^()]*)*)\)", r"`\1`", text)
    text = re.sub(r"\bI\(([^)]*)\)", r"*\1*", text)
    text = re.sub(r"\bB\(([^)]*)\)", r"**\1**", text)
    return re.sub(r"\bU\(([^)]*)\)", r"<\1>", text)


def _default(option: Mapping[str, Any]) -> str:
    if option.get("required"):
        return "required"
    if "default" not in option:
        return ""
    value = option["default"]
    shown = value if isinstance(value, str) else json.dumps(value)
    return f"`{shown}`".replace("|", "\\|") if shown != "" else '`""`'


def _option_rows(options: Mapping[str, Mapping[str, Any]], prefix: str = "") -> list[dict[str, str]]:
    rows = []
    for name, option in options.items():
        kind = option.get("type", "")
        kind += f" of {option['elements']}" if option.get("elements") else ""
        rows.append({"name": f"{prefix}{name}", "type": kind, "default": _default(option),
                     "description": _markdown(option.get("description", ""), " ").replace("|", "\\|")
                                    + (f" Choices: {', '.join(f'`{c}`' for c in option['choices'])}."
                                       if option.get("choices") else "")})
        rows += _option_rows(option.get("options") or {}, f"{prefix}{name}.")
    return rows


def _role_readme(role: Path) -> str:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    scenarios = sorted(p.parent.name for p in role.glob("molecule/*/molecule.yml"))
    entry_points = [{"name": name, "summary": _markdown(spec.get("short_description", "")),
                     "description": _markdown(spec.get("description", []))}
                    for name, spec in specs.items() if name != "main"]
    return templating.render_file("roles/README.md", {
        "role": role.name, "main": specs["main"], "summary": _markdown(specs["main"]["short_description"]),
        "description": _markdown(specs["main"].get("description", [])),
        "options": _option_rows(specs["main"].get("options") or {}), "entry_points": entry_points,
        "tagged": role.name in _TAGGED, "scenarios": scenarios,
        "internal": str(specs["main"]["short_description"]).startswith("Internal"),
    })


def role_readmes(settings: Settings, workspace: Workspace) -> dict[str, str]:
    """roles/<role>/README.md of every role, from its meta/argument_specs.yml (`llmobs generate`)."""
    roles = workspace.root / "roles"
    return {f"roles/{role.name}/README.md": _role_readme(role)
            for role in sorted(roles.iterdir()) if (role / "meta" / "argument_specs.yml").is_file()}
