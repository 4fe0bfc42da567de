"""The GPU preflight on the host, run by the gpu_preflight role's systemd timer between converges: probe the
NVIDIA stack, judge it with the plan the role wrote (llmobs.preflight.variables.plan, validated on the
controller), and replace node_exporter's textfile atomically, so the gpu-host-stack alerts see a regression
within one timer period instead of at the next converge.

GPU hosts do not have llmobs: the role copies this module with the stdlib-only modules it runs
(`SHIPPED`: the parsers, the judge, the textfile, the probe) under empty package files, so the host runs the
controller's very code, and the timer's textfile is byte for byte the converge's.

    python3 -m llmobs.preflight.host --plan /etc/llmobs/gpu_preflight.json   (PYTHONPATH: the copy)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from importlib import resources
from typing import Any

from llmobs.preflight import checks, probe, textfile

# Modules the host needs, beside this one: each imports only the standard library and the others.
SHIPPED = ("parsers.py", "checks.py", "textfile.py", "probe.py", "host.py")
_PACKAGE_MARKER = '"""A copy of the llmobs modules the GPU preflight timer runs (llmobs.preflight.host)."""\n'


def shipped_files() -> dict[str, str]:
    """{path under the copy's root: text} of what the role installs on a GPU host."""
    own = resources.files("llmobs.preflight")
    files = {"llmobs/__init__.py": _PACKAGE_MARKER, "llmobs/preflight/__init__.py": _PACKAGE_MARKER}
    files.update({f"llmobs/preflight/{name}": own.joinpath(name).read_text(encoding="utf-8") for name in SHIPPED})
    return files


def write_atomically(path: str, text: str) -> bool:
    """Replace `path` by `text` through a temporary file in the same directory (node_exporter never reads half a
    file); an unchanged file is left alone. Whether it changed."""
    try:
        with open(path, encoding="utf-8") as current:
            if current.read() == text:
                return False
    except OSError:
        pass
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".llmobs_gpu_preflight.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return True


def run(config: dict[str, Any], host: str) -> tuple[dict[str, Any], str]:
    """(the report, the textfile) of this host, from the role's configuration (the plan and the probe options)."""
    plan = config["plan"]
    options = config.get("probe", {})
    raw = probe.collect(plan["query_fields"], plan["query_format"], **options)
    report = checks.judge(raw, plan, host)
    return report, textfile.render(report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", required=True, help="the JSON file the gpu_preflight role wrote")
    parser.add_argument("--textfile-dir", help="node_exporter's textfile directory (default: the plan's)")
    parser.add_argument("--stdout", action="store_true", help="print the textfile instead of writing it")
    args = parser.parse_args(argv)
    with open(args.plan, encoding="utf-8") as handle:
        config = json.load(handle)
    report, text = run(config, config.get("host", ""))
    if args.stdout:
        sys.stdout.write(text)
    else:
        target = os.path.join(args.textfile_dir or config["textfile_dir"], textfile.FILE_NAME)
        changed = write_atomically(target, text)
        print(f"{report['summary']}; {len(report['failed'])} failed, {len(report['warned'])} warned;"
              f" {target} {'rewritten' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
