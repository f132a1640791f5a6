"""Debian's nginx running deploy/nginx.conf in front of local processes (for bench/scaleout.py and
tests/browser/test_behind_nginx.py): only the upstream addresses, the port and the files' places
change, so what is measured and tested is the configuration docs/DEPLOY.md gives."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
START_S = 30.0


def find_nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, often not on a user's PATH), or None."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nginx_conf(upstreams: list[str], port: int, prefix: Path) -> str:
    """deploy/nginx.conf with these upstream addresses ("host:port") and port, its files under `prefix`."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf, replaced = re.subn(r"(\s*)server chatapp1:8080 ([^;]*);\n\s*server chatapp2:8080 [^;]*;", "\\1@@;", conf)
    if replaced != 1:
        raise RuntimeError("deploy/nginx.conf no longer names chatapp1 and chatapp2 as its upstream servers")
    indent = "\n        "
    conf = conf.replace("@@;", indent.join(f"server {up} max_fails=1 fail_timeout=10s;" for up in upstreams).lstrip())
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    return f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n" + conf


@contextmanager
def running_nginx(upstreams: list[str], prefix: Path, nginx: str | None = None) -> Iterator[str]:
    """nginx in front of `upstreams` until the block ends; yields its URL."""
    binary = nginx or find_nginx()
    if binary is None:
        raise RuntimeError("Debian's nginx is not installed (apt-get install nginx)")
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (prefix / "nginx.conf").write_text(nginx_conf(upstreams, port, prefix))
    process = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process, prefix)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for(url: str, process: subprocess.Popen, prefix: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    log_file = prefix / "error.log"
    raise RuntimeError(f"nginx did not start: {log_file.read_text() if log_file.exists() else 'no log'}")


def route_to(url: str, upstream: str, *, start: int = 0) -> str:
    """A value of the route cookie that nginx at `url` sends to `upstream` ("host:port")."""
    for n in range(start, start + 500):
        answer = httpx.get(f"{url}/healthz", cookies={"chatapp_route": f"r{n}"}, timeout=10)
        if answer.headers.get("x-chatapp-upstream") == upstream:
            return f"r{n}"
    raise RuntimeError(f"no route leads to {upstream}")
