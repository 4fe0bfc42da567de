"""The HA site under faults (tests/ha/ha_site.py): what the kit promises in docs/reliability.md, measured.

One site per module; the tests run in file order and share it. The 2-minute outage of prom-a runs while
the Alertmanager and receiver faults are injected (prom-b alone sends the alerts then), so the file stays short.
Each test prints its figures (the `figure` fixture, in the run's summary) and fails on any sample or
notification lost or sent twice.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import ha_site as ha
import pytest
from ha_site import Site, wait_for

from llmobs import images

pytestmark = [pytest.mark.docker, pytest.mark.ha]

PROMETHEUS_OUTAGE_S = 120
STORE_OUTAGE_S = 30  # far longer than remote_write's max_backoff (2 s here)
# The fleet's series: the GPU server's, which both Prometheus scrape.
FLEET = '{job=~"dcgm|vllm"}'
# The series that stay while the faults of the campaign take the exporter and the engine away.
FLEET_SCRAPES = '{job=~"dcgm|vllm", __name__=~"up|scrape_duration_seconds|scrape_samples_scraped"}'
SILENCE_MATCHERS = [{"name": "alertname", "value": "GpuThermalMarginLow", "isRegex": False, "isEqual": True},
                    {"name": "host", "value": ha.GPU_HOST, "isRegex": False, "isEqual": True}]


@dataclass
class State:
    site: Site
    started: float = 0.0
    prom_a_stopped: float = 0.0
    silence_id: str = ""
    notes: dict[str, float] = field(default_factory=dict)


def _unavailable() -> str | None:
    chosen = {**images.pins(), **images.read_env(), **{v: os.environ[v] for v in ha.IMAGES if os.environ.get(v)}}
    absent = [f"{variable}={chosen.get(variable)}" for variable in ha.IMAGES
              if not chosen.get(variable) or not images.present(chosen[variable])]
    return f"images are missing: {', '.join(absent)} (`llmobs setup` builds stand-ins)" if absent else None


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    if reason := _unavailable():
        pytest.skip(f"no HA site: {reason}")
    compose_file, _ = ha.write_site(tmp_path_factory.mktemp("ha-site"))
    chosen = {**images.pins(), **images.read_env()}
    env = {variable: os.environ.get(variable) or chosen[variable] for variable in ha.IMAGES}
    env.update({variable: "0" for variable in ha.PORT_VARIABLES})
    site = Site(compose_file, f"llmobs-ha-{os.getpid()}", env)
    started = time.monotonic()
    try:
        site.up()
        yield State(site, started=started)
    finally:
        print(f"\nHA site: {time.monotonic() - started:.0f} s from `up` to teardown")
        if os.environ.get("LLMOBS_HA_LOGS"):
            print(site.compose("logs", "--tail", "40", check=False).stdout[-8000:])
        site.down()


def _fault(site: Site, method: str, body: dict) -> None:
    site.call(ha.GPU_HOST, "/sim/faults", method, body)


def _firing(site: Site, prometheus: str, alertname: str) -> dict | None:
    return next((a for a in site.alerts(prometheus) if a["labels"]["alertname"] == alertname
                 and a["state"] == "firing"), None)


def _peers(site: Site, alertmanager: str) -> int:
    return len(site.call(alertmanager, "/api/v2/status")["cluster"]["peers"])


def _buckets(timestamps: list[float]) -> set[int]:
    """The store's deduplication intervals that hold a sample."""
    return {int(t // ha.INTERVAL_S) for t in timestamps}


def _max_gap(timestamps: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(timestamps)), default=0.0)


def test_the_site_converges(state: State, figure) -> None:
    site = state.site
    for prometheus in ("prom-a", "prom-b"):
        def targets_up(prometheus: str = prometheus) -> bool:
            active = site.call(prometheus, "/api/v1/targets", state="active")["data"]["activeTargets"]
            return bool(active) and all(t["health"] == "up" for t in active) and len(active)
        count = wait_for(f"every target of {prometheus} up", targets_up, 90)
        figure(f"{prometheus}: {count} targets up")
    wait_for("both Alertmanagers clustered", lambda: _peers(site, "am-a") == 2 == _peers(site, "am-b"), 60)
    wait_for("the store answers a query of the fleet's series",
             lambda: site.call("victoria-metrics", "/api/v1/query", query=f"count({FLEET})")["data"]["result"], 60)
    figure(f"site ready {time.monotonic() - state.started:.0f} s after `compose up` (peers 2, store answering)")


def test_store_outage_loses_no_sample(state: State, figure) -> None:
    site = state.site
    stopped = site.stop("victoria-metrics")
    time.sleep(STORE_OUTAGE_S)
    site.up("victoria-metrics")
    back = time.time()
    start, end = stopped - 10, back

    def lost() -> int:
        local = site.samples("prom-b", FLEET, start, end)
        stored = site.samples("victoria-metrics", FLEET, start, end)
        return sum(len(_buckets(ts) - _buckets(stored.get(series, []))) for series, ts in local.items())

    missing = lost()
    caught_up = wait_for("the store caught up with prom-b's local TSDB", lambda: lost() == 0 and time.time(), 120)
    local = site.samples("prom-b", FLEET, start, end)
    figure(f"store down {back - stopped:.0f} s: {sum(map(len, local.values()))} samples of {len(local)} series in "
           f"prom-b over the window, {missing} missing in the store right after it returned, 0 after "
           f"{caught_up - back:.1f} s (catch-up)")


def test_alertmanager_peer_down_sends_each_notification_once(state: State, figure) -> None:
    site = state.site
    # prom-a's 2-minute outage starts here; the store's side is checked once it is back (test below).
    state.prom_a_stopped = site.stop("prom-a")
    site.stop("am-b")
    _fault(site, "POST", {"fault": "exporter-down"})
    injected = time.time()
    wait_for("DcgmExporterDown notified by the remaining peer",
             lambda: site.notifications("DcgmExporterDown"), 90)
    arrived = time.time()
    silence = site.call("am-a", "/api/v2/silences", "POST", {
        "matchers": SILENCE_MATCHERS, "startsAt": _iso(time.time()), "endsAt": _iso(time.time() + 3600),
        "createdBy": "tests/ha", "comment": "created while am-b is away"})
    state.silence_id = silence["silenceID"]
    site.up("am-b")
    returned = time.time()
    wait_for("am-b back in the cluster", lambda: _peers(site, "am-b") == 2, 60)
    silences = wait_for("the silence reaches am-b by gossip", lambda: [
        s for s in site.call("am-b", "/api/v2/silences") if s["id"] == state.silence_id], 60)
    gossiped = time.time()
    assert silences[0]["status"]["state"] == "active"
    # Both peers hold the alert now; a duplicate would come within a group interval plus the peer timeout.
    time.sleep(10 + 15 + 5)
    sent = site.notifications("DcgmExporterDown")
    figure(f"Alertmanager peer down: {len(sent)} notification(s) of DcgmExporterDown (want 1), "
           f"{arrived - injected:.0f} s after the fault; silence gossiped {gossiped - returned:.0f} s after am-b "
           f"returned")
    assert len(sent) == 1, sent


def test_receiver_down_gets_the_notification_when_back(state: State, figure) -> None:
    site = state.site
    site.stop("alert-sink")
    _fault(site, "POST", {"fault": "engine-down", "engine": ha.ENGINE})
    wait_for("VllmEngineDown active in Alertmanager", lambda: [
        a for a in site.call("am-a", "/api/v2/alerts") if a["labels"]["alertname"] == "VllmEngineDown"], 90)
    time.sleep(20)  # at least one failed delivery (group_wait 5 s, then retries)
    back = time.time()  # `up` returns once the sink is healthy; a delivery may land before that
    site.up("alert-sink")
    sent = wait_for("VllmEngineDown delivered after the receiver returned",
                    lambda: site.notifications("VllmEngineDown"), 90)
    time.sleep(15)
    delivered = site.notifications("VllmEngineDown")
    figure(f"receiver down 20+ s: VllmEngineDown delivered {sent[0]['received_at'] - back:.0f} s after it "
           f"was restarted, {len(delivered)} notification(s), 0 lost")
    # While the receiver is down neither peer's notification log records a success, so each peer retries on
    # its own and both may get through when it returns: a cluster delivers at least once, and at most once
    # per peer (Alertmanager's documented guarantee). Exactly once holds while the receiver answers (above).
    assert 1 <= len(delivered) <= 2, delivered


def test_the_store_has_no_gap_while_one_prometheus_is_down(state: State, figure) -> None:
    site = state.site
    time.sleep(max(0.0, state.prom_a_stopped + PROMETHEUS_OUTAGE_S - time.time()))
    site.up("prom-a")
    restarted = time.time()
    time.sleep(2 * ha.INTERVAL_S)
    start, end = state.prom_a_stopped - 15, restarted
    stored = site.samples("victoria-metrics", FLEET_SCRAPES, start, end)
    assert stored, "the store holds none of the fleet's series"
    counts = {len(ts) for ts in stored.values()}
    gaps = max(_max_gap(ts) for ts in stored.values())
    expected = (end - start) / ha.INTERVAL_S
    figure(f"prom-a down {restarted - state.prom_a_stopped:.0f} s: {len(stored)} fleet series in the store, "
           f"{min(counts)}-{max(counts)} samples each over {end - start:.0f} s (one per {ha.INTERVAL_S} s: "
           f"{expected:.0f}), longest gap {gaps:.1f} s")
    assert gaps < 2 * ha.INTERVAL_S + 1, f"a gap of {gaps:.1f} s in the store"


def test_prometheus_restart_restores_for_state_without_renotifying(state: State, figure) -> None:
    site = state.site
    before = _firing(site, "prom-a", "DcgmExporterDown") or wait_for(
        "DcgmExporterDown firing on prom-a", lambda: _firing(site, "prom-a", "DcgmExporterDown"), 60)
    restarted = time.time()
    site.compose("restart", "-t", "10", "prom-a")
    site.up("prom-a")
    after = wait_for("DcgmExporterDown firing again on prom-a", lambda: _firing(site, "prom-a", "DcgmExporterDown"),
                     60)
    time.sleep(10 + 10)
    renotified = site.notifications("DcgmExporterDown", since=restarted)
    figure(f"prom-a restart: DcgmExporterDown active since {before['activeAt']} before and {after['activeAt']} "
           f"after; {len(renotified)} new notification(s)")
    # ALERTS_FOR_STATE keeps whole seconds
    assert after["activeAt"][:19] == before["activeAt"][:19], "the `for` state was not restored"
    assert renotified == []


def test_alertmanager_restart_keeps_silences_and_notification_log(state: State, figure) -> None:
    site = state.site
    restarted = site.stop("am-a", "am-b")
    site.up("am-a", "am-b")
    for alertmanager in ("am-a", "am-b"):
        kept = [s for s in site.call(alertmanager, "/api/v2/silences") if s["id"] == state.silence_id]
        assert kept and kept[0]["status"]["state"] == "active", f"{alertmanager} lost the silence"
    wait_for("the alerts back in Alertmanager", lambda: [
        a for a in site.call("am-a", "/api/v2/alerts") if a["labels"]["alertname"] == "DcgmExporterDown"], 60)
    time.sleep(5 + 10 + 15)  # group_wait, a group interval and the peer timeout
    renotified = [n for name in ("DcgmExporterDown", "VllmEngineDown")
                  for n in site.notifications(name, since=restarted)]
    figure(f"both Alertmanagers restarted: silence kept on both, {len(renotified)} notification(s) repeated")
    assert renotified == []


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))

