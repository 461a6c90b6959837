"""CPU of a live update's pre-copy, per side, in one process (no sockets, no other load).

    .venv/bin/python benchmarks/precopy.py [--sizes 100000,1000000] [--record-path]

The store of benchmarks/live_update.py (1,000 nodes per domain). "send" is what the running
daemon spends encoding its tree into IMAGE packets (``precopy.tree_image``, garbage
collection on with the tree frozen, as after a live update); "load" is what the standby
successor spends decoding them into its tree (``TreeLoader``, collection off, as in
mockd/successor.py). ``--record-path`` also times the general path the pre-copy used before:
``tree_records`` + ``encode_image``, and ``ImageParser`` (pre-order validation) +
``restore_node``. CPU seconds (``time.process_time``) and wall seconds are printed, and the
load average, since the wall time depends on what else runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_update import store_records

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.pipeline import ImageParser
from xsmig_daemon.image.profiles import SPEC
from xsmig_daemon.image.records import End, Header, NodeData
from xsmig_daemon.store import precopy
from xsmig_daemon.store.engine import Engine
from xsmig_daemon.store.image_state import restore_engine, restore_node, tree_records
from xsmig_daemon.store.tree import Tree
from xsmig_daemon.store.treeload import TreeLoader
from xsmig_daemon.wire import handover as ho

HEADER = Header(2, False)
#: The running daemon's batch (mockd/standby.py).
PIECE = 16384


T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = work()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def send_fast(engine: Engine) -> list[bytes]:
    pieces = precopy.tree_image(engine.tree, HEADER, PIECE)
    return [packet.payload for piece in pieces for packet in ho.image_packets(piece)]


def send_records(engine: Engine) -> list[bytes]:
    image = b"".join(encode_image(tree_records(engine), HEADER))
    return [packet.payload for packet in ho.image_packets(image)]


def load_fast(payloads: list[bytes]) -> int:
    parser, loader = ImageParser(None), TreeLoader(Tree())
    for payload in payloads:
        loader.feed(parser.stream(payload))
    loader.finish()
    return loader.loaded


def load_records(payloads: list[bytes]) -> int:
    parser = ImageParser(SPEC, preorder=True, migration=True)
    tree = Tree()
    tree.clear()
    loaded = 0
    for payload in payloads:
        for item in parser.stream(payload):
            if isinstance(item.record, NodeData):
                restore_node(tree, item.record)
                loaded += 1
            elif isinstance(item.record, End):
                break
    return loaded


def measure(
    name: str,
    engine: Engine,
    send: Callable[[Engine], list[bytes]],
    load: Callable[[list[bytes]], int],
) -> None:
    payloads, send_cpu, send_wall = timed(lambda: send(engine))
    gc.disable()
    try:
        loaded, load_cpu, load_wall = timed(lambda: load(payloads))
    finally:
        gc.enable()
    assert loaded == len(engine.tree.nodes)
    load_avg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{len(engine.tree.nodes):>9} {name:>7} {send_cpu:>9.2f} {send_wall:>9.2f} "
        f"{load_cpu:>9.2f} {load_wall:>9.2f}   {load_avg}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--record-path", action="store_true")
    args = parser.parse_args()
    print(
        f"{'nodes':>9} {'path':>7} {'send cpu':>9} {'wall':>9} {'load cpu':>9} {'wall':>9}"
        "   load average"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        engine = restore_engine(store_records(size))
        gc.freeze()
        measure("fast", engine, send_fast, load_fast)
        if args.record_path:
            measure("records", engine, send_records, load_records)
        del engine
        gc.unfreeze()
    return 0


if __name__ == "__main__":
    sys.exit(main())
