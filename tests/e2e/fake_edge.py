"""A stand-in for the edge of a running cluster, for stacks that render their manifests.

It answers the way the rendered product would: each public service reports the version its
rendered Deployment runs, a version containing `broken` answers 500, and the canary gets the
share of requests the rendered Traefik configuration (the edge ConfigMap) gives it. So smoke
tests, rollbacks and canary analysis run against what `pulumi up` really produced.
"""

from __future__ import annotations

import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml


class FakeEdge:
    def __init__(self, manifests: Path):
        self.manifests = manifests  # .../rendered/<stack>/1-manifest
        edge = self
        self.hits: dict[str, int] = {}
        self.delay_seconds = 0.0  # a slow edge keeps a smoke test running (to interrupt it there)
        self.requests = threading.Event()  # set once any request arrived
        self._parsed_key: tuple = ()
        self._parsed: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                edge.requests.set()
                if edge.delay_seconds:
                    time.sleep(edge.delay_seconds)
                status, body = edge.answer(self.path)
                self.send_response(status)
                self.send_header("X-App-Version", body)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def _documents(self) -> list[dict]:
        # Parsed once per rendering (keyed by each file's mtime): parsing the ~70 manifests on
        # every request took seconds on a busy machine, longer than the smoke test's timeout.
        paths = sorted(self.manifests.glob("*.yaml"))
        key = tuple((path.name, path.stat().st_mtime_ns) for path in paths)
        if key != self._parsed_key:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            self._parsed = [yaml.load(path.read_text(), Loader=loader) for path in paths]
            self._parsed_key = key
        return self._parsed

    def _image_version(self, name: str) -> str | None:
        for doc in self._documents():
            if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == name:
                image = doc["spec"]["template"]["spec"]["containers"][0]["image"]
                return image.rsplit(":", 1)[-1]
        return None

    def _routes(self) -> dict:
        for doc in self._documents():
            if doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "edge-files":
                return yaml.safe_load(doc["data"]["routes.yml"])["http"]
        return {"routers": {}, "services": {}}

    def answer(self, path: str) -> tuple[int, str]:
        routes = self._routes()
        matches = [(len(prefix), name) for name, router in routes["routers"].items()
                   for prefix in [router["rule"].split("PathPrefix(`")[1].split("`")[0]]
                   if path.startswith(prefix.rstrip("/") + "/") or path == prefix]
        if not matches:
            return 404, "no route"
        service = max(matches)[1]
        tracks = routes["services"][service]["weighted"]["services"]
        chosen = random.choices([t["name"] for t in tracks], weights=[t["weight"] for t in tracks])[0]
        deployment = service if chosen.endswith("-stable") else f"{service}-canary"
        version = self._image_version(deployment) or "missing"
        self.hits[deployment] = self.hits.get(deployment, 0) + 1
        return (500 if "broken" in version else 200), version
