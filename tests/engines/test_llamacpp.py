"""The real llama.cpp server's image and recording: the pins, the Dockerfile's interface, and the
metrics reference (docs/engines-llamacpp.md) against what the server answered."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gguf

from llmobs.engines import llamacpp
from llmobs.engines.tiny_gguf import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "sim" / "data"
DOC = REPO / "docs" / "engines-llamacpp.md"
VERSION = llamacpp.upstream_version()
TYPE_LINE = re.compile(r"^# TYPE (?P<name>\S+) (?P<type>\S+)$", re.MULTILINE)
SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<labels>\{[^}]*\})? \S+$", re.MULTILINE)
DOC_ROW = re.compile(r"^\| `(?P<name>llamacpp:[a-z_]+)` \| (?P<type>\w+) \| (?P<labels>[^|]+) \| (?P<exposed>[^|]+) \|",
                     re.MULTILINE)


def _exec_form(instruction: str) -> list[str]:
    """The JSON array of a Dockerfile instruction in exec form (continuation lines joined)."""
    text = llamacpp.DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return json.loads(re.search(rf"^{instruction} (\[.*\])$", text, re.MULTILINE)[1])


def _documented() -> dict[str, tuple[str, str, str]]:
    return {row["name"]: (row["type"], row["labels"].strip(), row["exposed"].strip())
            for row in DOC_ROW.finditer(DOC.read_text(encoding="utf-8"))}


def _recorded(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_pins_are_exact_debian_versions() -> None:
    assert re.fullmatch(r"\d+:\d+\.\d+\.\d+\+dfsg-\d+", llamacpp.pinned())
    assert re.fullmatch(r"\d+\.\d+\.\d+-\d+", llamacpp.pinned("GGML_VERSION"))
    assert llamacpp.upstream_version("1:0.7.0+dfsg-2") == "0.7.0"


def test_the_recording_is_of_the_pinned_version() -> None:
    """A new pin needs a new recording (and a look at the metrics table)."""
    recording = json.loads(_recorded(f"llamacpp-{VERSION}.json"))
    assert recording["debian_package"] == f"llama.cpp-tools {llamacpp.pinned()}"
    assert recording["libggml0"] == llamacpp.pinned("GGML_VERSION")


def test_dockerfile_interface() -> None:
    """Metrics on, the port the kit scrapes, and the model and alias the generator writes."""
    assert _exec_form("ENTRYPOINT") == ["llama-server", "--metrics", "--host", "0.0.0.0", "--port",
                                        str(llamacpp.PORT)]
    command = _exec_form("CMD")
    assert command[command.index("--model") + 1] == f"/models/{llamacpp.MODEL_FILE}"
    assert command[command.index("--alias") + 1] == DEFAULT_MODEL.name
    assert f"COPY {llamacpp.MODEL_FILE} /models/{llamacpp.MODEL_FILE}" in llamacpp.DOCKERFILE.read_text()
    assert f"http://127.0.0.1:{llamacpp.PORT}/health" in llamacpp.DOCKERFILE.read_text()


def test_build_context(tmp_path: Path) -> None:
    llamacpp.build_context(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Dockerfile", llamacpp.MODEL_FILE]
    reader = gguf.GGUFReader(tmp_path / llamacpp.MODEL_FILE)
    assert reader.fields["general.name"].contents() == DEFAULT_MODEL.name


def test_documented_metrics_are_the_recorded_ones() -> None:
    """Every family the real server wrote is in the table with its type, and every metric the table
    says is always exposed was written, in both recordings."""
    documented = _documented()
    always = {name: kind for name, (kind, _, exposed) in documented.items() if exposed == "always"}
    for recording in (f"llamacpp-{VERSION}.prom", f"llamacpp-{VERSION}-busy.prom"):
        recorded = {match["name"]: match["type"] for match in TYPE_LINE.finditer(_recorded(recording))}
        assert recorded == always, recording
    assert set(always) < set(documented)


def test_no_series_has_a_label() -> None:
    """Why the scrape configuration must add the model: llama.cpp's own series carry none."""
    documented = _documented()
    for recording in (f"llamacpp-{VERSION}.prom", f"llamacpp-{VERSION}-busy.prom"):
        samples = list(SAMPLE.finditer(_recorded(recording)))
        assert len(samples) == len([name for name, row in documented.items() if row[2] == "always"])
        assert all(sample["labels"] is None for sample in samples), recording
    assert all(labels == "none" for _, labels, exposed in documented.values() if exposed == "always")


def test_busy_recording_shows_a_queue() -> None:
    busy = dict(match.group(0).split() for match in SAMPLE.finditer(_recorded(f"llamacpp-{VERSION}-busy.prom")))
    assert float(busy["llamacpp:requests_processing"]) == 2
    assert float(busy["llamacpp:requests_deferred"]) >= 1


def test_values_have_six_significant_digits_at_most() -> None:
    """C++'s default stream precision, which quantises big counters (docs/engines-llamacpp.md)."""
    for recording in (f"llamacpp-{VERSION}.prom", f"llamacpp-{VERSION}-busy.prom"):
        values = [match.group(0).rsplit(" ", 1)[1] for match in SAMPLE.finditer(_recorded(recording))]
        digits = [len(value.split("e")[0].replace(".", "").lstrip("0")) for value in values]
        assert max(digits) <= 6, recording
        assert any(digit == 6 for digit in digits), recording
