"""The Docker edge's routes, switched in the running edge: the zero-downtime half of a release.

pulumi-docker replaces a container by deleting it first, and the edge holds the published
ports, so the edge must never be replaced for a release. Its routing (Traefik's dynamic
configuration: which release slot's containers serve each service, canary weights) is a file in
a directory Traefik watches, replaced atomically inside the running edge by a
`command:local:Command` (`python -m components.targets.docker_routes`, the switch as JSON on
stdin) once the new slot passed its readiness gate. The command returns only when Traefik's own
API reports exactly the new servers, so the engine deletes the previous slot's containers (at
the end of the update) only after no new request can reach them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

@dataclass(frozen=True)
class Switch:
    docker: Sequence[str]
    edge: str  # container name
    path: str  # the routes file Traefik watches
    routes: str  # the dynamic configuration document
    status_url: str  # Traefik's API inside the edge: /api/http/services
    # Traefik service name -> what it must report: its server URLs (a load balancer) or its
    # tracks' weights (a weighted service); a weight change alone changes no server.
    servers: Mapping[str, Sequence[str] | Mapping[str, int]]
    deadline_seconds: float

    @classmethod
    def from_json(cls, text: str) -> "Switch":
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps({"docker": list(self.docker), "edge": self.edge, "path": self.path,
                           "routes": self.routes, "status_url": self.status_url,
                           "servers": {k: v if isinstance(v, Mapping) else list(v) for k, v in self.servers.items()},
                           "deadline_seconds": self.deadline_seconds}, sort_keys=True)


class SwitchFailed(Exception):
    pass


def write_routes(switch: Switch) -> None:
    script = f"mkdir -p $(dirname {switch.path}) && cat > {switch.path}.tmp && mv -f {switch.path}.tmp {switch.path}"
    done = subprocess.run([*switch.docker, "exec", "-i", switch.edge, "sh", "-c", script],
                          input=switch.routes, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SwitchFailed(f"could not write {switch.path} in {switch.edge}: {done.stderr.strip()[-300:]}")


def loaded_servers(switch: Switch) -> dict[str, list[str] | dict[str, int]]:
    """Traefik's view of its file-provider services (from its API): a load balancer's server
    URLs, a weighted service's track weights."""
    fetch = f"timeout 3 wget -q -O - {switch.status_url}"
    done = subprocess.run([*switch.docker, "exec", switch.edge, "sh", "-c", fetch],
                          capture_output=True, text=True, timeout=15)
    if done.returncode != 0:
        return {}
    services = {}
    for service in json.loads(done.stdout or "[]"):
        name = service.get("name", "")
        if not name.endswith("@file"):
            continue
        if "loadBalancer" in service:
            services[name.removesuffix("@file")] = sorted(s["url"] for s in service["loadBalancer"].get("servers", []))
        elif "weighted" in service:
            services[name.removesuffix("@file")] = {track["name"].removesuffix("@file"): track.get("weight", 1)
                                                    for track in service["weighted"].get("services", [])}
    return services


def switch_routes(switch: Switch) -> float:
    """Write the routes, then wait until Traefik serves exactly them; seconds it took."""
    started = time.monotonic()
    write_routes(switch)
    wanted = {name: dict(want) if isinstance(want, Mapping) else sorted(want) for name, want in switch.servers.items()}
    seen: dict[str, list[str]] = {}
    while time.monotonic() - started < switch.deadline_seconds:
        seen = loaded_servers(switch)
        if all(seen.get(name) == urls for name, urls in wanted.items()):
            return round(time.monotonic() - started, 3)
        time.sleep(0.2)
    differ = {name: {"wanted": urls, "loaded": seen.get(name)} for name, urls in wanted.items()
              if seen.get(name) != urls}
    raise SwitchFailed(f"the edge {switch.edge} did not load the new routes within "
                       f"{switch.deadline_seconds:g}s: {json.dumps(differ)}")


def main() -> int:
    switch = Switch.from_json(sys.stdin.read())
    try:
        seconds = switch_routes(switch)
    except (SwitchFailed, subprocess.TimeoutExpired, json.JSONDecodeError) as failure:
        print(f"edge routes switch failed; the previous slot's containers are kept: {failure}", file=sys.stderr)
        return 1
    print(json.dumps({"switched_seconds": seconds, "servers": switch.servers}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
