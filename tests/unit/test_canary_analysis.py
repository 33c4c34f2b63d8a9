"""Canary analysis from Prometheus (deployctl/analysis.py) against a fake Prometheus HTTP API.

The fake answers /api/v1/query as Prometheus does (a vector of one sample, or none) with numbers
chosen per test, and records the PromQL it was sent."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

import pytest

from components.config.release import PrometheusAnalysis, RolloutSpec
from deployctl.analysis import AnalysisError, analyse_canary, analyse_prometheus, query
from deployctl.rollout import Analysis


class FakePrometheus:
    """Answers the three analysis queries by their shape: requests (increase), timeouts (le=), successes."""

    def __init__(self, requests: float | None, success: float | None, timeout: float | None, status: str = "success"):
        self.values = {"requests": requests, "success": success, "timeout": timeout}
        self.status, self.queries = status, []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                promql = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)["query"][0]
                fake.queries.append(promql)
                kind = "requests" if promql.startswith("sum(increase(") else "timeout" if "le=" in promql else "success"
                value = fake.values[kind]
                result = [] if value is None else [{"metric": {}, "value": [1700000000, repr(value)]}]
                body = {"status": fake.status, "data": {"resultType": "vector", "result": result}}
                if fake.status != "success":
                    body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
                payload = json.dumps(body).encode()
                self.send_response(200 if fake.status == "success" else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus(request):
    fakes = []

    def start(**values):
        fake = FakePrometheus(**values)
        fakes.append(fake)
        return fake

    yield start
    for fake in fakes:
        fake.close()


def rollout(url: str, **overrides) -> RolloutSpec:
    return RolloutSpec(prometheus=PrometheusAnalysis(url=url, **overrides))


def test_aborts_a_canary_that_answers_with_errors(prometheus):
    fake = prometheus(requests=300, success=0.62, timeout=0.0)
    verdict = analyse_canary(rollout(fake.url), "api", "1.7.0-broken")
    assert not verdict.passes(0.95, 0.05)
    assert (verdict.source, verdict.requests, verdict.successes) == ("prometheus", 300, 186)


def test_passes_a_healthy_canary(prometheus):
    fake = prometheus(requests=300, success=0.995, timeout=0.0)
    assert analyse_canary(rollout(fake.url), "api", "1.5.0").passes(0.95, 0.05)


def test_aborts_a_canary_whose_requests_time_out(prometheus):
    fake = prometheus(requests=300, success=1.0, timeout=0.2)
    assert not analyse_canary(rollout(fake.url), "api", "1.5.0").passes(0.95, 0.05)


def test_aborts_without_enough_canary_requests(prometheus):
    fake = prometheus(requests=3, success=1.0, timeout=0.0)
    verdict = analyse_prometheus(rollout(fake.url).prometheus, "api", "1.5.0")
    assert not verdict.passes(0.95, 0.05) and "not enough evidence" in verdict.reason


def test_aborts_when_prometheus_has_no_data_for_the_canary(prometheus):
    fake = prometheus(requests=None, success=None, timeout=None)
    assert not analyse_canary(rollout(fake.url), "api", "1.5.0").passes(0.95, 0.05)


def test_aborts_when_prometheus_refuses_the_query(prometheus):
    fake = prometheus(requests=300, success=1.0, timeout=0.0, status="error")
    verdict = analyse_canary(rollout(fake.url), "api", "1.5.0")
    assert not verdict.passes(0.95, 0.05) and "Prometheus" in verdict.reason


def test_aborts_when_prometheus_cannot_be_reached():
    verdict = analyse_canary(rollout("http://127.0.0.1:9"), "api", "1.5.0")
    assert not verdict.passes(0.95, 0.05) and "did not answer" in verdict.reason


def test_queries_select_the_canary_track_of_the_service_over_the_window(prometheus):
    fake = prometheus(requests=300, success=1.0, timeout=0.0)
    analyse_canary(rollout(fake.url, window="90s", timeout_bucket="1"), "api", "1.5.0")
    assert len(fake.queries) == 3
    assert all('service="api", track="canary"' in q and "[90s]" in q for q in fake.queries)
    assert any('le="1"' in q for q in fake.queries)


def test_queries_are_configurable(prometheus):
    fake = prometheus(requests=300, success=1.0, timeout=0.0)
    custom = 'sum(rate(my_ok_total{app="{service}", release="{version}"}[{window}]))'
    analyse_canary(rollout(fake.url, success_query=custom), "api", "1.5.0")
    assert 'sum(rate(my_ok_total{app="api", release="1.5.0"}[2m]))' in fake.queries


def test_the_worse_of_prometheus_and_the_direct_probes_decides(prometheus):
    fake = prometheus(requests=300, success=1.0, timeout=0.0)
    failing_probe = Analysis(requests=50, successes=10, timeouts=0)
    assert not analyse_canary(rollout(fake.url), "api", "1.5.0", probe=lambda: failing_probe).passes(0.95, 0.05)


def test_a_query_returning_several_series_is_an_error():
    with pytest.raises(AnalysisError, match="must aggregate to one"):
        _several_series_query()


def _several_series_query():
    hs = http.server

    class Handler(hs.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            payload = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"version": "a"}, "value": [0, "1"]}, {"metric": {"version": "b"}, "value": [0, "1"]}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = hs.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        query(f"http://127.0.0.1:{server.server_port}", "sum by (version) (up)")
    finally:
        server.shutdown()
        server.server_close()
