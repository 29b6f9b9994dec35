"""Check deploy/nginx-classroom.conf for real: three tiny Streamlit replicas behind it, sessions over its websocket.

Needs the nginx binary (Debian: `apt-get install nginx-light`); it is not a Python dependency of
the app, so this is a script to run by hand, not part of the test suite. It starts three
`streamlit run` replicas of a one-line app that names its replica, rewrites the example's
upstream ports and `listen` to free local ports, starts nginx, and checks that
- the first request gets the `llmpg_replica` cookie and later requests with it do not get a new one;
- Streamlit sessions work through nginx's websocket upgrade (a same-origin Origin header, as a browser);
- every session of one cookie lands on the same replica, and different cookies spread over the replicas.

Usage: .venv/bin/python deploy/check_nginx.py [--browsers 9]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.st_client import Session, free_port, start_server

APP = 'import os\nimport streamlit as st\nst.title("replica " + os.environ["REPLICA"])\n'


def replica_cookie(response) -> str | None:
    for header in response.headers.get_all("Set-Cookie") or []:
        if header.startswith("llmpg_replica="):
            return header.split(";")[0]
    return None


async def titles_seen(url: str, cookie: str, sessions: int) -> set[str]:
    titles = set()
    for _ in range(sessions):
        session = Session(url, headers={"Cookie": cookie, "Origin": url})
        try:
            await session.open(timeout=60)
            titles.add(session.heading())
        finally:
            await session.close()
    return titles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--browsers", type=int, default=9, help="distinct cookies (browsers) to try")
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    folder = Path(tempfile.mkdtemp(prefix="llmpg-nginx-"))
    (folder / "app.py").write_text(APP)
    replicas = [
        start_server(folder / "app.py", folder, folder / f"replica-{i}.log", env={"REPLICA": str(i)}) for i in range(3)
    ]
    port = free_port()
    conf = (ROOT / "deploy" / "nginx-classroom.conf").read_text()
    for example, replica in zip(("8501", "8502", "8503"), replicas):
        conf = conf.replace(f"127.0.0.1:{example}", "127.0.0.1:" + replica.url.rsplit(":", 1)[1])
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    conf_path = folder / "nginx.conf"
    conf_path.write_text(conf)
    url = f"http://127.0.0.1:{port}"
    try:
        subprocess.run([nginx, "-t", "-q", "-c", str(conf_path)], check=True)
        subprocess.run([nginx, "-c", str(conf_path)], check=True)
        placed = {}
        for _ in range(args.browsers):
            with urllib.request.urlopen(url + "/") as response:
                cookie = replica_cookie(response)
            assert cookie, "the first request sets llmpg_replica"
            request = urllib.request.Request(url + "/_stcore/health", headers={"Cookie": cookie})
            with urllib.request.urlopen(request) as response:
                assert replica_cookie(response) is None, "a browser with the cookie keeps it"
            titles = asyncio.run(titles_seen(url, cookie, 3))
            assert len(titles) == 1, f"{cookie}: sessions went to {titles}"
            placed[cookie] = titles.pop()
            print(f"{cookie}: {placed[cookie]}")
        used = sorted(set(placed.values()))
        print(f"{args.browsers} browsers, 3 sessions each, each browser always on one replica; replicas used: {used}")
        assert len(used) > 1, "the cookies spread over the replicas"
    finally:
        subprocess.run([nginx, "-s", "quit", "-c", str(conf_path)], check=False)
        for replica in replicas:
            replica.stop()
    print("nginx-classroom.conf: ok")


if __name__ == "__main__":
    main()
