"""xsmig against a live Xen 4.22.0 xenstored: the checks CI cannot run (developer sessions).

    XEN_PEER_HEAD_CACHE=/var/tmp/xen-peer-4.22 .venv/bin/python tests/data/xen-4.22/live_check.py

Needs ``../shared/peer-src/build.sh RELEASE-4.22.0`` done. Prints one line per check
(``PASS`` / ``FAIL`` + what was seen) and exits 1 if any failed. Each check starts its own
daemons and stops them by pid. The checks:

* ``repaired-dump NAME``: every committed 4.22 dump, converted by ``xsmig convert --target
  xen-4.22``, loads in 4.22 (``xenstored -U``) and ``xenstore-ls -f -p /`` equals the one
  recorded from the live daemon before the dump (NAME.json);
* ``raw-dump NAME``: the same dump unconverted, to show what 4.22 does with its own dump;
* ``lu-hook``: 4.22's own live update through ``xsmig lu-hook`` (profile xen-4.22) with a
  client holding a depth watch of every (path_len + token_len) % 8 class: the daemon survives
  (same pid), the client's connection and every watch survive (events arrive), the tree is
  unchanged;
* ``snapshot SOURCE``: ``xsmig snapshot --target xen-4.22`` from the mock (introspect), from
  4.22 itself (wire) and from a committed image (image) loads in 4.22 and the tree matches;
  quotas, domain features and unique-ids where the source has them;
* ``mock->4.22`` and ``4.22->mock``: live update in both directions with a client (depth
  watch included) surviving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import peer422
from peer422 import HERE, REPO, Daemon
from wireclient import WireClient, payload

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    GlobalQuotaData,
    Header,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.wire.ops import Op

XSMIG = [sys.executable, "-m", "xsmig_daemon"]
DUMPS = ("watches", "watches-v1", "depth-ok", "domains", "domains-v1", "unintroduced")
RESULTS: list[tuple[str, bool, str]] = []


def report(name: str, ok: bool, detail: str) -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def xsmig(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*XSMIG, *args], cwd=REPO, capture_output=True, text=True, timeout=120, env=env, check=False
    )


def reference_ls(name: str) -> str:
    return str(json.loads((HERE / f"{name}.json").read_text())["ls"])


def check_restore(name: str, image: bytes, expected_ls: str) -> tuple[bool, str]:
    daemon = peer422.restore(image)
    try:
        if not daemon.wait_ready():
            return False, f"4.22 died: {daemon.fatal()}"
        listing = daemon.ls()
        same = listing == expected_ls
        return same, "loaded, xenstore-ls equal" if same else f"xenstore-ls differs:\n{listing}"
    finally:
        daemon.stop()


def check_dumps() -> None:
    work = Path(tempfile.mkdtemp(prefix="x22c"))
    for name in DUMPS:
        raw = (HERE / f"{name}.img").read_bytes()
        ok, detail = check_restore(name, raw, reference_ls(name))
        print(f"info raw-dump {name}: 4.22 on its own dump: {detail.splitlines()[0]}")
        out = work / f"{name}.img"
        run = xsmig("convert", "--target", "xen-4.22", str(HERE / f"{name}.img"), str(out))
        if run.returncode:
            report(f"repaired-dump {name}", False, run.stderr.strip())
            continue
        ok, detail = check_restore(name, out.read_bytes(), reference_ls(name))
        repaired = "; ".join(line.split(" (")[0] for line in run.stderr.splitlines())
        report(f"repaired-dump {name}", ok, f"{detail} ({repaired or 'nothing repaired'})")


def check_layouts() -> None:
    """The same depth watches written in the design document's layout and in 4.22's."""
    _, located = decode_image(dump_converted("watches"))
    records = [
        WatchDataExtended(r.conn_id, r.path, r.token, 2)
        if isinstance(r := item.record, WatchData) and r.path.startswith("/d/")
        else r
        for item in located
    ]
    seen = {}
    for layout in ("doc", "xen-4.22"):
        data = b"".join(encode_image(records, Header(2), watch_ext_layout=layout))
        daemon = peer422.restore(data)
        try:
            seen[layout] = "loads" if daemon.wait_ready() else f"dies: {daemon.fatal()}"
        finally:
            daemon.stop()
    ok = seen["doc"].startswith("dies") and seen["xen-4.22"] == "loads"
    report(
        "layouts",
        ok,
        f"8 depth watches in the document's layout: 4.22 {seen['doc']}; in "
        f"4.22's loader layout (what xsmig writes for xen-4.22): 4.22 {seen['xen-4.22']}",
    )


def dump_converted(name: str) -> bytes:
    out = Path(tempfile.mkdtemp(prefix="x22l")) / f"{name}.img"
    run = xsmig("convert", "--target", "xen-4.22", str(HERE / f"{name}.img"), str(out))
    if run.returncode:
        raise RuntimeError(run.stderr)
    return out.read_bytes()


# -- the lu-hook inside 4.22's own live update ---------------------------------------------


def depth_watch_client(daemon: Daemon) -> tuple[WireClient, list[tuple[str, str, str]]]:
    """A client with plain watches and a depth watch of each class; initial events read."""
    client = daemon.client()
    watches: list[tuple[str, str, str]] = []
    for residue in range(8):
        path = f"/d/c{residue}"
        client.request(Op.WRITE, payload(f"{path}/leaf", value=b"x"))
        token = f"t{residue}" + "x" * ((residue - len(path) - 1 - 3) % 8)
        watches.append((path, token, str(residue + 1)))
    watches.append(("/vm", "tok2", ""))
    for path, token, depth in watches:
        args = (path, token, depth) if depth else (path, token)
        reply = client.call(Op.WATCH, *args)
        assert reply.op == Op.WATCH, reply.describe()
        client.event()
    return client, watches


def events_arrive(daemon: Daemon, client: WireClient, paths: list[str]) -> list[str]:
    """Write under each watched path; returns the paths whose event did not arrive."""
    missing = []
    with daemon.client() as writer:
        for path in paths:
            writer.request(Op.WRITE, payload(f"{path}/leaf", value=b"after"))
            try:
                event = client.event(timeout=5)
            except RuntimeError:
                missing.append(path)
                continue
            if not event.payload.startswith(f"{path}/leaf".encode()):
                missing.append(f"{path} (got {event.payload!r})")
    return missing


def lu_hook_config(work: Path) -> Path:
    binary = Path(peer422.CACHE) / "src/tools/xenstored/xenstored"
    config = work / "config.toml"
    config.write_text(
        f'[snapshots]\ndirectory = "{work}/snaps"\n[log]\nlevel = "info"\n'
        f'[lu_hook]\nsuccessor = "{binary}"\nprofile = "xen-4.22"\n'
        f'wrapper = "{work}/lu-hook"\n'
    )
    run = xsmig("lu-hook", "--config", str(config), "--install-wrapper")
    if run.returncode:
        raise RuntimeError(f"--install-wrapper: {run.stderr}")
    return config


def check_own_update() -> None:
    """The defect itself: 4.22's own live update (no hook) with the same client."""
    daemon = peer422.start()
    client = None
    try:
        client, _ = depth_watch_client(daemon)
        binary = Path(peer422.CACHE) / "src/tools/xenstored/xenstored"
        rc, out = daemon.live_update("-f", str(binary))
        alive = daemon.wait_ready()
        report(
            "reproduce",
            not alive,
            f"4.22's own live update with those depth watches: xenstore-control exit {rc} "
            f"{out.strip()!r}; the daemon {'survived (unexpected)' if alive else 'died'}: "
            f"{daemon.fatal()}",
        )
    finally:
        if client is not None:
            client.close()
        daemon.stop()


def check_lu_hook() -> None:
    work = Path(tempfile.mkdtemp(prefix="x22h"))
    lu_hook_config(work)
    daemon = peer422.start()
    client = None
    try:
        client, watches = depth_watch_client(daemon)
        before = daemon.ls()
        rc, out = daemon.live_update("-f", str(work / "lu-hook"))
        alive = daemon.wait_ready()
        if not alive:
            report("lu-hook", False, f"4.22 died: {daemon.fatal()}; {out.strip()}")
            return
        same = daemon.ls() == before
        missing = events_arrive(daemon, client, [w[0] for w in watches])
        manifests = sorted((work / "snaps").glob("lu-*.manifest.json"))
        repairs = json.loads(manifests[-1].read_text())["conversion"]["repairs"]
        ok = not missing and same and rc == 0
        report(
            "lu-hook",
            ok,
            f"xenstore-control exit {rc} {out.strip()!r}, same pid {daemon.pid}, tree "
            f"{'equal' if same else 'CHANGED'}"
            f", {len(watches) - len(missing)}/{len(watches)} watches fire after the update"
            f"{' (missing ' + ', '.join(missing) + ')' if missing else ''}; manifest repairs: "
            f"{repairs}",
        )
    finally:
        if client is not None:
            client.close()
        daemon.stop()


# -- live update between the mock and 4.22, both ways ------------------------------------


def start_mock(rundir: Path, *args: str) -> Daemon:
    socket_path = rundir / "socket"
    log = (rundir / "mockd.log").open("w")
    proc = subprocess.Popen(
        # The spec protocol: the mock has no xen-4.22 --compat row, and 4.22 answers
        # GET_FEATURE/GET_QUOTA and depth watches as the spec does.
        [*XSMIG, "mockd", "--rundir", str(rundir), "--compat", "spec", *args],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    daemon = Daemon(rundir, proc.pid)
    for _ in range(200):
        if socket_path.exists():
            return daemon
        if proc.poll() is not None:
            break
        subprocess.run(["sleep", "0.05"], check=False)
    raise RuntimeError(f"mockd did not start: {(rundir / 'mockd.log').read_text()}")


def launcher(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def depth_kept(daemon: Daemon, client: WireClient) -> bool:
    """/d/c0 was watched with depth 1: a write two levels below must not fire it."""
    with daemon.client() as writer:
        writer.request(Op.WRITE, payload("/d/c0/deep/er", value=b"x"))
        writer.request(Op.WRITE, payload("/vm/after", value=b"x"))  # fires /vm (no depth)
    event = client.event(timeout=5)
    return event.payload.startswith(b"/vm/after\0")


def quota_and_features(daemon: Daemon) -> dict[str, str]:
    with daemon.client() as client:
        return {
            "dom0 features": client.call(Op.GET_FEATURE, "0").payload.rstrip(b"\0").decode(),
            "quota nodes": client.call(Op.GET_QUOTA, "nodes").payload.rstrip(b"\0").decode(),
        }


def check_mock_to_422() -> None:
    work = Path(tempfile.mkdtemp(prefix="x22m"))
    binary = Path(peer422.CACHE) / "src/tools/xenstored/xenstored"
    libs = ":".join(
        str(Path(peer422.CACHE) / "src/tools/libs" / lib)
        for lib in (
            "toolcore",
            "toollog",
            "evtchn",
            "gnttab",
            "call",
            "foreignmemory",
            "manage",
            "store",
        )
    )
    successor = launcher(
        work / "lu-to-422",
        f"exec env LD_LIBRARY_PATH={libs} LD_PRELOAD={peer422.CACHE}/xsshim.so "
        f"XENSTORED_RUNDIR={work} XENSTORED_PATH={work}/socket {binary} -N -U",
    )
    mock = start_mock(work, "--lu-successor", "xen-4.22")
    client = None
    try:
        mock.control("quota", "set", "nodes", "2000")
        client, watches = depth_watch_client(mock)
        before, settings = mock.ls(), quota_and_features(mock)
        rc, out = mock.live_update("-f", str(successor))
        if not mock.wait_ready():
            report("mock->4.22", False, f"successor died: {mock.log()[-300:]} {out}")
            return
        now = cmdline(mock.pid)
        same = mock.ls() == before
        after = quota_and_features(mock)
        depth = depth_kept(mock, client)
        missing = events_arrive(mock, client, [w[0] for w in watches])
        ok = rc == 0 and "xenstored" in now[0] and same and not missing and depth
        # The mock answers GET_FEATURE 0 with ENOENT (dom0 is not introduced in it); 4.22's
        # dom0 must have every feature (WATCHDEPTH among them) after the update.
        ok = ok and after == {**settings, "dom0 features": "14"}
        report(
            "mock->4.22",
            ok,
            f"exit {rc} {out.strip()!r}; pid {mock.pid} now runs {Path(now[0]).name} "
            f"{' '.join(now[1:]).strip()}; tree {'equal' if same else 'CHANGED'}; "
            f"{len(watches) - len(missing)}/{len(watches)} watches fire; depth limit "
            f"{'kept' if depth else 'LOST'}; {settings} -> {after}",
        )
    finally:
        if client is not None:
            client.close()
        mock.stop()


def check_422_to_mock() -> None:
    work = Path(tempfile.mkdtemp(prefix="x22k"))
    successor = launcher(
        work / "lu-to-mock",
        f"unset LD_PRELOAD LD_LIBRARY_PATH\ncd {REPO} && exec {sys.executable} -m "
        'xsmig_daemon mockd --compat spec "$@"',
    )
    daemon = peer422.start()
    client = None
    try:
        daemon.control("quota", "set", "nodes", "2000")
        client, watches = depth_watch_client(daemon)
        with daemon.client() as admin:
            admin.request(Op.WRITE, payload("/local/domain/1/name", value=b"g1"))
            admin.call(Op.INTRODUCE, "1", "4097", "11")
            admin.call(Op.SET_QUOTA, "1", "nodes", "77")
        before, settings = daemon.ls(), quota_and_features(daemon)
        rc, out = daemon.live_update("-f", str(successor))
        if not daemon.wait_ready():
            report("4.22->mock", False, f"mock died: {daemon.log()[-400:]} {out}")
            return
        now = cmdline(daemon.pid)
        same = daemon.ls() == before
        after = quota_and_features(daemon)
        with daemon.client() as admin:
            dom1 = admin.call(Op.GET_QUOTA, "1", "nodes").payload.rstrip(b"\0").decode()
        snap = work / "after.img"
        run = xsmig("snapshot", "--socket", str(daemon.socket), "--output", str(snap))
        uids = {}
        if run.returncode == 0:
            _, located = decode_image(snap.read_bytes())
            uids = {
                r.record.spec.domid: r.record.unique_id
                for r in located
                if isinstance(r.record, ConnectionData) and hasattr(r.record.spec, "domid")
            }
        missing = events_arrive(daemon, client, [w[0] for w in watches])
        ok = rc == 0 and "mockd" in now and same and not missing and after == settings
        ok = ok and dom1 == "77" and uids.get(1) == 2
        report(
            "4.22->mock",
            ok,
            f"exit {rc} {out.strip()!r}; pid {daemon.pid} now runs xsmig mockd; tree "
            f"{'equal' if same else 'CHANGED'}; {len(watches) - len(missing)}/{len(watches)} "
            f"watches fire (depth-less: 4.22 never wrote their depth); {settings} -> {after}; "
            f"dom1 nodes quota {dom1}; ring unique-ids in the mock {uids} (4.22 had domid+1)",
        )
    finally:
        if client is not None:
            client.close()
        daemon.stop()


# -- xsmig snapshot --target xen-4.22 from every source ------------------------------------


def redump(daemon: Daemon, work: Path) -> dict[str, object]:
    """What 4.22 itself holds after loading our image: its own dump (capture.sh)."""
    data = daemon.capture(work / "redump.img")
    _, located = decode_image(data)
    facts: dict[str, object] = {}
    for item in located:
        record = item.record
        if isinstance(record, ConnectionData) and hasattr(record.spec, "domid"):
            facts[f"dom{record.spec.domid} unique-id"] = record.unique_id
        elif isinstance(record, DomainData):
            quotas = dict(record.quotas)
            facts[f"dom{record.domid}"] = (record.features, quotas.get("nodes"))
        elif isinstance(record, GlobalQuotaData):
            facts["global nodes"] = dict(record.domain_quotas).get("nodes")
    return facts


def snapshot_loads(name: str, args: list[str], expected_ls: str, want: dict[str, object]) -> None:
    work = Path(tempfile.mkdtemp(prefix="x22s"))
    image = work / "snap.img"
    run = xsmig("snapshot", "--target", "xen-4.22", "--output", str(image), *args)
    if run.returncode:
        report(f"snapshot {name}", False, run.stderr.strip())
        return
    daemon = peer422.restore(image.read_bytes())
    try:
        if not daemon.wait_ready():
            report(f"snapshot {name}", False, f"4.22 died: {daemon.fatal()}")
            return
        same = daemon.ls() == expected_ls
        facts = redump(daemon, work)
        kept = {key: facts.get(key) for key in want}
        ok = same and kept == want
        report(
            f"snapshot {name}",
            ok,
            f"loads in 4.22, xenstore-ls {'equal' if same else 'DIFFERS'}; 4.22's own re-dump "
            f"holds {kept}" + ("" if kept == want else f" (expected {want})"),
        )
    finally:
        daemon.stop()


def check_snapshots() -> None:
    # image: a committed 4.22 dump (quotas, features, unique-ids, broken depth watches)
    snapshot_loads(
        "image domains.img",
        ["--image", str(HERE / "domains.img")],
        reference_ls("domains"),
        {
            "dom1 unique-id": 2,
            "dom2 unique-id": 3,
            "dom0": (14, 1000),  # 4.22 kept dom0's own quota at 1000 (domains.img)
            "dom1": (14, 77),
            "dom2": (6, 2000),
            "global nodes": 2000,
        },
    )
    # wire: the live 4.22 daemon itself
    daemon = peer422.start()
    try:
        daemon.control("quota", "set", "nodes", "2000")
        with daemon.client() as admin:
            admin.request(Op.WRITE, payload("/vm/1/name", value=b"web"))
            admin.call(Op.SET_PERMS, "/vm/1/name", "n0", "r5")
        snapshot_loads(
            "wire 4.22",
            ["--socket", str(daemon.socket), "--source", "wire"],
            daemon.ls(),
            {"global nodes": 2000, "dom0": (14, 2000)},
        )
    finally:
        daemon.stop()
    # introspect: the mock
    mock = start_mock(Path(tempfile.mkdtemp(prefix="x22i")))
    client = None
    try:
        mock.control("quota", "set", "nodes", "2000")
        client, _ = depth_watch_client(mock)
        snapshot_loads(
            "introspect mock",
            ["--socket", str(mock.socket), "--source", "introspect"],
            mock.ls(),
            {"global nodes": 2000, "dom0": (14, 2000)},
        )
    finally:
        if client is not None:
            client.close()
        mock.stop()


CHECKS: dict[str, Callable[[], None]] = {
    "snapshots": check_snapshots,
    "dumps": check_dumps,
    "reproduce": check_own_update,
    "layouts": check_layouts,
    "lu-hook": check_lu_hook,
    "mock->4.22": check_mock_to_422,
    "4.22->mock": check_422_to_mock,
}


def main(names: list[str]) -> int:
    if not peer422.built():
        print("no 4.22 xenstored: run ../shared/peer-src/build.sh RELEASE-4.22.0", file=sys.stderr)
        return 2
    print(f"xen 4.22 xenstored: {peer422.release()} ({peer422.CACHE})")
    for name in names or list(CHECKS):
        try:
            CHECKS[name]()
        except Exception as exc:  # a developer script: report the check as failed, go on
            report(name, False, f"{type(exc).__name__}: {exc}")
    failed = [name for name, ok, _ in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("XEN_PEER_HEAD_CACHE", peer422.CACHE)
    sys.exit(main(sys.argv[1:]))
