"""Capture the dumps in this folder from a real Xen 4.22.0 xenstored (developer sessions only).

    export XEN_MIRROR=/work/.mirror/xen-project+xen/repo XEN_PEER_HEAD_CACHE=/var/tmp/xen-peer-4.22
    ../shared/peer-src/build.sh RELEASE-4.22.0
    .venv/bin/python tests/data/xen-4.22/make_dumps.py [NAME...]

Each scenario starts a fresh 4.22 daemon (start.sh), sets up state over its socket, records
what the real daemon and Debian's tools report about it (``xenstore-ls -f -p /``, features,
quotas) and the watches the scenario registered, then makes the daemon dump itself by its own
live update (capture.sh, ``-v 2`` default and ``-v 1``). Per dump NAME.img there is
NAME.json: the scenario's inputs and the daemon's answers (the references of the CI tests in
tests/image/test_xen422_dumps.py) and what happened to the daemon's own restore.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from peer422 import HERE, Daemon, built, release, start
from wireclient import WireClient, payload

from xsmig_daemon.wire.ops import Op

Watch = dict[str, object]


def ok(client: WireClient, op: Op, *args: str | bytes) -> bytes:
    reply = client.call(op, *args)
    if reply.op != op:
        raise RuntimeError(f"{op.name} {args}: {reply.describe()}")
    return reply.payload


def write(client: WireClient, path: str, value: bytes | str) -> None:
    data = value.encode() if isinstance(value, str) else value
    reply = client.request(Op.WRITE, payload(path, value=data))
    if reply.op != Op.WRITE:
        raise RuntimeError(f"WRITE {path}: {reply.describe()}")


def token_for(path: str, residue: int, stem: str) -> str:
    """A token such that (path_len + token_len) % 8 == residue, lengths with their NULs."""
    need = (residue - (len(path) + 1) - (len(stem) + 1)) % 8
    return stem + "x" * need


def depth_watches(client: WireClient, classes: range) -> list[Watch]:
    """One depth watch per (path_len + token_len) % 8 class, depth = class + 1."""
    watches: list[Watch] = []
    for residue in classes:
        path = f"/d/c{residue}"
        token = token_for(path, residue, f"t{residue}")
        depth = residue + 1
        ok(client, Op.WATCH, path, token, str(depth))
        watches.append({"path": path, "token": token, "depth": depth, "class": residue})
    return watches


def plain_watches(client: WireClient) -> list[Watch]:
    watches: list[Watch] = []
    for path, token in (("/vm", "tok2"), ("@releaseDomain", "rel"), ("name", "relative")):
        ok(client, Op.WATCH, path, token)
        watches.append({"path": path, "token": token, "depth": None})
    return watches


def base_tree(client: WireClient) -> None:
    write(client, "/vm/1/name", "web")
    write(client, "/local/domain/0/name", "Domain-0")
    for residue in range(8):
        write(client, f"/d/c{residue}/leaf", str(residue))


def scenario_watches(daemon: Daemon, keep: list[WireClient]) -> dict[str, object]:
    """Plain watches and one depth watch of every (path_len + token_len) % 8 class."""
    client = daemon.client()
    keep.append(client)
    base_tree(client)
    watches = plain_watches(client) + depth_watches(client, range(8))
    return {"watches": watches}


def scenario_depth_ok(daemon: Daemon, keep: list[WireClient]) -> dict[str, object]:
    """Depth watches of the classes whose declared len is right (1-4) only."""
    client = daemon.client()
    keep.append(client)
    base_tree(client)
    return {"watches": plain_watches(client) + depth_watches(client, range(1, 5))}


def introduce(client: WireClient, domid: int, port: int) -> None:
    ok(client, Op.INTRODUCE, str(domid), str(0x1000 + domid), str(port))


def scenario_domains(daemon: Daemon, keep: list[WireClient]) -> dict[str, object]:
    """Quotas, domains with features, targets and per-domain quotas, pending input."""
    daemon.control("quota", "set", "nodes", "2000")
    daemon.control("quota-soft", "set", "memory", "3000000")
    client = daemon.client()
    keep.append(client)
    write(client, "/local/domain/1/name", "guest1")
    ok(client, Op.SET_PERMS, "/local/domain/1", "n1", "r0")
    write(client, "/local/domain/2/name", "guest2")
    ok(client, Op.SET_PERMS, "/local/domain/2", "n2")
    ok(client, Op.SET_FEATURE, "2", "6")
    introduce(client, 1, 11)
    introduce(client, 2, 12)
    ok(client, Op.SET_TARGET, "2", "1")
    ok(client, Op.SET_QUOTA, "1", "nodes", "77")
    ok(client, Op.SET_QUOTA, "2", "watches", "33")
    ok(client, Op.SET_PERMS, "@introduceDomain", "n0", "r1")
    watches = plain_watches(client) + depth_watches(client, range(1, 3))
    # A second client leaves the first 7 bytes of a READ header unprocessed.
    partial = daemon.client()
    keep.append(partial)
    partial.send_raw(bytes([2, 0, 0, 0, 9, 0, 0]))
    features = {d: ok(client, Op.GET_FEATURE, str(d)).rstrip(b"\0").decode() for d in (0, 1, 2)}
    quotas = {
        "dom1 nodes": ok(client, Op.GET_QUOTA, "1", "nodes").rstrip(b"\0").decode(),
        "dom2 watches": ok(client, Op.GET_QUOTA, "2", "watches").rstrip(b"\0").decode(),
    }
    return {
        "watches": watches,
        "features": features,
        "domain_quotas": quotas,
        "partial_input": "07 bytes of a READ header (02 00 00 00 09 00 00) on a socket client",
        "global_quota": daemon.control("quota"),
    }


def scenario_unintroduced(daemon: Daemon, keep: list[WireClient]) -> dict[str, object]:
    """A node's permissions name domain 3, which exists but was never introduced."""
    client = daemon.client()
    keep.append(client)
    write(client, "/vm/3/config", "pending")
    ok(client, Op.SET_PERMS, "/vm/3/config", "n0", "r3")
    return {"watches": [], "unintroduced_domain": 3}


Scenario = Callable[[Daemon, list[WireClient]], dict[str, object]]

SCENARIOS: dict[str, Scenario] = {
    "watches": scenario_watches,
    "depth-ok": scenario_depth_ok,
    "domains": scenario_domains,
    "unintroduced": scenario_unintroduced,
}


def capture(name: str, scenario: Scenario, lu_args: tuple[str, ...]) -> None:
    suffix = "-v1" if lu_args else ""
    out = HERE / f"{name}{suffix}.img"
    daemon = start()
    keep: list[WireClient] = []
    try:
        facts = scenario(daemon, keep)
        facts["ls"] = daemon.ls()
        daemon.capture(out, *lu_args)
        survived = daemon.wait_ready()
        facts["self_restore"] = "ok" if survived else f"died: {daemon.fatal()}"
        if survived and name == "depth-ok" and not lu_args:
            # The restored watches are wrong: a second update shows what 4.22 now holds.
            second = HERE / f"{name}-second.img"
            daemon.capture(second)
            facts["second_update"] = "ok" if daemon.wait_ready() else f"died: {daemon.fatal()}"
    finally:
        for client in keep:
            client.close()
        daemon.stop()
    facts["made_by"] = (
        f"xenstored RELEASE-4.22.0 ({release()}), tests/data/xen-4.22/make_dumps.py "
        f"scenario_{name.replace('-', '_')}, live-update {' '.join(lu_args) or '(-v 2)'}"
    )
    meta = HERE / f"{name}{suffix}.json"
    meta.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    print(f"{out.name}: {out.stat().st_size} bytes, self-restore {facts['self_restore']}")


def main(names: list[str]) -> int:
    if not built():
        print("no 4.22 xenstored: run ../shared/peer-src/build.sh RELEASE-4.22.0", file=sys.stderr)
        return 2
    for name in names or list(SCENARIOS):
        for lu_args in ((), ("-v", "1")):
            capture(name, SCENARIOS[name], lu_args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
