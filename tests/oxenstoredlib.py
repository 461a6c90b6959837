"""oxenstored (the OCaml xenstored of the same Debian packages as the C referees) as a wire
source for tests and benchmarks.

It runs under the same shim as the C daemons, with two more things it insists on:
- it raises RLIMIT_NOFILE beyond the hard limit a container gives (``setrlimit`` EPERM
  stops it before ``--help``): a tiny preload clamps the request to the hard limit;
- its socket and pid file are compiled in under ``/run/xenstored`` and 4.20 loads its
  xenctrl plugin from ``/usr/lib/xen-4.20``: it runs in a private mount namespace
  (``unshare -m``) where a tmpfs covers /run, the run directory is bind-mounted at
  /run/xenstored, and (4.20) the peer's /usr/lib covers the host's. Nothing of this is
  visible outside that one process's namespace.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peerlib import PeerInstall, RunningDaemon, short_tempdir, spawn, wait_serving
from wireclient import DEFAULT_TIMEOUT, PeerError

_CLAMP_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/resource.h>
typedef int (*setrlimit_fn)(__rlimit_resource_t, const struct rlimit *);
int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit) {
    setrlimit_fn real = (setrlimit_fn)dlsym(RTLD_NEXT, "setrlimit");
    struct rlimit now, want = *limit;
    if (getrlimit(resource, &now) == 0 && want.rlim_max > now.rlim_max)
        want.rlim_max = now.rlim_max;
    if (want.rlim_cur > want.rlim_max)
        want.rlim_cur = want.rlim_max;
    return real(resource, &want);
}
"""

_CONFIG = """\
pid-file = {rundir}/xenstored.pid
merge-activate = true
perms-activate = true
quota-activate = true
persistent = false
xenstored-log-file = {rundir}/oxenstored-own.log
access-log-file = {rundir}/access.log
xenstored-kva = /proc/xen/xsd_kva
xenstored-port = /proc/xen/xsd_port
"""


def rlimit_clamp(install: PeerInstall) -> Path:
    """The setrlimit-clamping preload, built once into the peer's cache."""
    library = install.cache / "xsmig-rlimit-clamp.so"
    if library.is_file():
        return library
    source = install.cache / "xsmig-rlimit-clamp.c"
    source.write_text(_CLAMP_SOURCE)
    partial = library.with_suffix(".so.partial")
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(partial), str(source), "-ldl"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    partial.rename(library)
    return library


def oxenstored_binary(install: PeerInstall) -> Path:
    return install.xenstored_bin.with_name("oxenstored")


def _launcher(install: PeerInstall, rundir: Path) -> str:
    """Shell lines run as root inside the new mount namespace, ending in exec of the daemon."""
    clamp = rlimit_clamp(install)
    binary = oxenstored_binary(install)
    config = rundir / "oxenstored.conf"
    lines = [
        "set -e",
        "mount -t tmpfs xsmig-oxenstored /run",
        "mkdir /run/xenstored",
        f"mount --bind {shlex.quote(str(rundir))} /run/xenstored",
    ]
    daemon = [str(binary), "--no-fork", "--config-file", str(config)]
    if install.loader is None:
        env = f"LD_LIBRARY_PATH={install.libs} LD_PRELOAD='{install.shim} {clamp}'"
        lines.append(f"exec env {env} {shlex.join(daemon)}")
    else:
        # 4.20 dlopens its xenctrl plugin from a compiled-in /usr/lib/xen-4.20 path.
        lines.append(f"mount --bind {shlex.quote(str(install.root / 'usr/lib'))} /usr/lib")
        loader = [str(install.loader), "--library-path", install.libs]
        loader += ["--preload", f"{install.shim} {clamp}"]
        lines.append(f"exec {shlex.join([*loader, *daemon])}")
    return "\n".join(lines)


@dataclass
class Oxenstored(RunningDaemon):
    """oxenstored serving ``rundir/socket``; ``install`` is the C referee of the same
    version (its client tools and libraries)."""

    log_name: str = "oxenstored.log"


def start_oxenstored(
    version: str, *, rundir: Path | None = None, ready_timeout: float = DEFAULT_TIMEOUT
) -> Oxenstored:
    """Start oxenstored of Debian's ``version`` (4.17 or 4.20); returns once it accepts."""
    install = PeerInstall.locate(version).ensure()
    if not oxenstored_binary(install).is_file():
        raise PeerError(f"no oxenstored in {install.root}")
    owned = rundir is None
    rundir = short_tempdir("ox") if rundir is None else rundir
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "socket").unlink(missing_ok=True)
    (rundir / "oxenstored.conf").write_text(_CONFIG.format(rundir=rundir))
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c"]
    process = spawn([*command, _launcher(install, rundir)], rundir / Oxenstored.log_name)
    daemon = Oxenstored(install, rundir, process, owned)
    wait_serving(daemon, ready_timeout, f"oxenstored {version}")
    return daemon


@contextlib.contextmanager
def running_oxenstored(version: str) -> Iterator[Oxenstored]:
    daemon = start_oxenstored(version)
    try:
        yield daemon
    finally:
        daemon.stop()
