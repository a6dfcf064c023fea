"""A farm of vendor-style documentation pages served by nginx on 127.0.0.1.

`build(folder, n)` writes N pages (30-80 KB of HTML, one in ten in Chinese) and their v2, in
which about 2% of pages changed (half of those lost a flagged phrase). `Nginx(folder)` serves
the farm's `live/` folder; `switch(folder, version)` points `live` at v1 or v2.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

WORDS = " ".join(
    [
        "face detection model returns attributes confidence region image stream camera request",
        "response latency accuracy batch archive endpoint operator review threshold dataset",
        "label quality pose landmark occlusion blur brightness gender age glasses smile mask",
    ]
).split()
CJK = (
    "人脸检测模型返回属性置信度区域图像视频流摄像头请求响应延迟准确率"
    + "批量归档接口审核阈值数据集标签质量姿态"
)
FLAGGED = (
    "<tr><td>is_uyghur</td><td>boolean</td><td>Is it Uyghur: whether the face is Uyghur.</td></tr>"
)


@dataclass(frozen=True)
class Farm:
    root: Path
    n: int
    changed: tuple[int, ...]  # pages that differ in v2
    removed: tuple[int, ...]  # of those, pages whose flagged phrase is gone in v2
    flagged: tuple[int, ...]  # pages carrying the phrase in v1


def _paragraph(rng: random.Random, cjk: bool) -> str:
    if cjk:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(60, 200))) + "。"
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))).capitalize() + "."


def page(i: int, version: int, farm_seed: int, flagged: bool, changed: bool) -> str:
    rng = random.Random(farm_seed * 1_000_003 + i)
    cjk = i % 10 == 0
    target = rng.randint(30_000, 80_000)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Vision API page {i}</title>",
        "<script>window.cfg={build:'x81'}</script><style>td{padding:4px}</style></head><body>",
        f"<nav><a href='/'>Docs</a> › page {i}</nav><main><h1>Face attributes {i}</h1>",
        "<table><tr><th>Attribute</th><th>Type</th><th>Description</th></tr>",
        "<tr><td>glasses</td><td>enum</td><td>Whether the face wears glasses.</td></tr>",
    ]
    if flagged and not (changed and version == 2 and i % 2 == 0):
        parts.append(FLAGGED)
    parts.append("</table>")
    size = sum(map(len, parts))
    while size < target:
        para = f"<p>{_paragraph(rng, cjk)}</p>\n"
        parts.append(para)
        size += len(para.encode())
    if changed and version == 2:
        parts.append("<p>Updated: a new section on latency.</p>")
    parts.append("</main><footer>© Stratus Cloud</footer></body></html>")
    return "".join(parts)


def build(folder: Path, n: int, seed: int = 7) -> Farm:
    rng = random.Random(seed)
    changed = tuple(sorted(rng.sample(range(n), max(1, n // 50))))
    flagged = tuple(i for i in range(n) if i % 5 == 0 or i in changed)
    removed = tuple(i for i in changed if i % 2 == 0)
    for version in (1, 2):
        out = folder / f"v{version}"
        out.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            html = page(i, version, seed, i in flagged, i in changed)
            (out / f"p{i}.html").write_text(html, encoding="utf-8")
    switch(folder, 1)
    return Farm(folder, n, changed, removed, flagged)


def switch(folder: Path, version: int) -> None:
    live = folder / "live"
    tmp = folder / "live.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(f"v{version}")
    os.replace(tmp, live)


def ensure_nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    print("installing nginx-light from Debian's packages ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    return "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx in the foreground, serving the farm's live/ folder, stopped on exit."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        binary = ensure_nginx()
        conf = self.folder / "nginx.conf"
        conf.write_text(
            f"""
daemon off; master_process off; worker_processes 1; pid {self.folder}/nginx.pid;
error_log {self.folder}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  types {{ text/html html; }} default_type text/html; charset utf-8;
  client_body_temp_path {self.folder}/tmp; proxy_temp_path {self.folder}/tmp;
  fastcgi_temp_path {self.folder}/tmp; uwsgi_temp_path {self.folder}/tmp;
  scgi_temp_path {self.folder}/tmp;
  server {{ listen 127.0.0.1:{self.port}; root {self.folder}/live; disable_symlinks off; }}
}}
""",
            encoding="utf-8",
        )
        (self.folder / "tmp").mkdir(exist_ok=True)
        self.proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(self.folder)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("nginx did not start; see nginx-error.log")

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/p{i}.html"

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
