"""Codec benchmark: write then read an image of 1,000,000 NODE_DATA records, file to file.

The tree: ``/``, ``/local``, ``/local/domain``, then 1,000 domains x 1,000 nodes each
(``/local/domain/N`` and 999 nodes below it with the usual xenstore layout: name, domid, vm,
memory/*, cpu/*, device/vif|vbd/*, control/*, data/*), values of 5-64 bytes, two
permissions per node. Records are built while encoding (a producer has to build them too).

Every phase runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) is its own:

* ``write``: build records -> ``RecordEncoder`` -> buffered file
* ``read``: file in 1 MiB chunks -> ``ImageDecoder`` (framing checks only)
* ``read+validate``: file -> ``read_image(profile="spec")`` (the reading pipeline: decoder +
  ``StreamValidator``)

Usage: ``.venv/bin/python benchmarks/codec.py [--domains 1000] [--nodes 1000] [--dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from xsmig_daemon.image.decoder import ImageDecoder
from xsmig_daemon.image.encoder import RecordEncoder
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import End, Header, NodeData, Permission

CHUNK = 1 << 20
PHASES = ("write", "read", "read+validate")
VALUE_POOL = 4096


def domain_subpaths(count: int) -> list[str]:
    """``count`` relative paths below /local/domain/N, parents before children."""
    fixed = ["name", "domid", "vm", "memory", "memory/target", "memory/static-max",
             "memory/videoram", "cpu", "control", "control/shutdown",
             "control/feature-poweroff", "control/feature-reboot", "device", "device/vif",
             "device/vbd", "data"]  # fmt: skip
    paths = list(fixed)
    cpu = 0
    while len(paths) < count // 4:
        paths += [f"cpu/{cpu}", f"cpu/{cpu}/availability"]
        cpu += 1
    dev = 0
    while len(paths) < count // 2:
        vif = f"device/vif/{dev}"
        vbd = f"device/vbd/{51712 + dev * 16}"
        paths += [vif, f"{vif}/backend", f"{vif}/backend-id", f"{vif}/state", f"{vif}/mac",
                  f"{vif}/handle", vbd, f"{vbd}/backend", f"{vbd}/state",
                  f"{vbd}/virtual-device"]  # fmt: skip
        dev += 1
    item = 0
    while len(paths) < count:
        paths.append(f"data/item{item}")
        item += 1
    return paths[:count]


def value_pool() -> list[bytes]:
    """Printable values of 5-64 bytes (made before timing starts)."""
    rng = random.Random(4)
    return [
        bytes(rng.randrange(32, 127) for _ in range(rng.randint(5, 64))) for _ in range(VALUE_POOL)
    ]


def node_records(domains: int, nodes_per_domain: int, values: list[bytes]) -> Iterator[NodeData]:
    dom0 = (Permission("n", 0),)
    yield NodeData("/", b"", dom0)
    yield NodeData("/local", b"", dom0)
    yield NodeData("/local/domain", b"", dom0)
    subpaths = domain_subpaths(nodes_per_domain - 1)
    v = 0
    for domid in range(1, domains + 1):
        base = f"/local/domain/{domid}"
        perms = (Permission("n", domid), Permission("r", 0))
        yield NodeData(base, b"", (Permission("n", 0), Permission("r", domid)))
        for sub in subpaths:
            v = (v + 1) & (VALUE_POOL - 1)
            yield NodeData(f"{base}/{sub}", values[v], perms)


def phase_write(path: str, domains: int, nodes: int) -> dict[str, float]:
    encoder = RecordEncoder(Header())
    values = value_pool()
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    with open(path, "wb", buffering=CHUNK) as out:
        out.write(encoder.preamble())
        encode = encoder.encode
        write = out.write
        for record in node_records(domains, nodes, values):
            write(encode(record))
            count += 1
        write(encode(End()))
    elapsed = time.perf_counter() - start
    # CPU time too: on a machine shared with other work, wall time alone understates the codec.
    cpu = time.process_time() - cpu_start
    return {
        "records": count,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "bytes": os.path.getsize(path),
    }


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb", buffering=0) as src:
        while chunk := src.read(CHUNK):
            yield chunk


def phase_read(path: str) -> dict[str, float]:
    decoder = ImageDecoder()
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for chunk in _chunks(path):
        decoder.feed(chunk)
        for _ in decoder.records():
            count += 1
    decoder.close()
    elapsed = time.perf_counter() - start
    # CPU time too: on a machine shared with other work, wall time alone understates the codec.
    cpu = time.process_time() - cpu_start
    return {
        "records": count - 1,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "bytes": os.path.getsize(path),
    }


def phase_read_validate(path: str) -> dict[str, float]:
    count = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in read_image(_chunks(path), "spec"):
        count += 1
    elapsed = time.perf_counter() - start
    # CPU time too: on a machine shared with other work, wall time alone understates the codec.
    cpu = time.process_time() - cpu_start
    return {
        "records": count - 1,
        "seconds": elapsed,
        "cpu_seconds": cpu,
        "bytes": os.path.getsize(path),
    }


def run_phase(args: argparse.Namespace) -> None:
    if args.phase == "write":
        result = phase_write(args.file, args.domains, args.nodes)
    elif args.phase == "read":
        result = phase_read(args.file)
    else:
        result = phase_read_validate(args.file)
    result["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=1000, help="nodes per domain")
    parser.add_argument("--dir", help="directory for the image (default: a temporary one)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args)
        return
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="xsmig-bench-") as tmp:
        image = os.path.join(tmp, "bench.img")
        print(f"{'phase':<14} {'records':>9} {'wall s':>7} {'records/s':>10} {'MB/s':>6} "
              f"{'cpu s':>6} {'rec/cpu-s':>10} "
              f"{'peak RSS':>9}")  # fmt: skip
        for phase in PHASES:
            command = [sys.executable, __file__, "--phase", phase, "--file", image]
            command += ["--domains", str(args.domains), "--nodes", str(args.nodes)]
            out = subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out)
            rate = r["records"] / r["seconds"]
            mbps = r["bytes"] / r["seconds"] / 1e6
            cpu_rate = r["records"] / r["cpu_seconds"]
            print(f"{phase:<14} {int(r['records']):>9} {r['seconds']:>7.2f} {rate:>10,.0f} "
                  f"{mbps:>6.1f} {r['cpu_seconds']:>6.2f} {cpu_rate:>10,.0f} "
                  f"{r['max_rss_kib'] / 1024:>6.1f} MB")  # fmt: skip
        print(f"image: {r['bytes'] / 1e6:.1f} MB, {args.domains} domains x {args.nodes} nodes")


if __name__ == "__main__":
    main()
