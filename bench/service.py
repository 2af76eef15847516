"""The real service under gunicorn, started the way the integration tests start it."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs
from bench.config import REPO
from devstack.process import dies_with_parent

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    port: int
    prefix: str
    process: subprocess.Popen[bytes]
    folder: Path
    workers: list[int] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.folder / "service.log"

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *self.workers]

    def cpu_seconds(self) -> float:
        """Master and workers; the worker list is checked so a restarted worker cannot hide CPU."""
        current = procs.children(self.process.pid)
        if current != self.workers:
            raise RuntimeError(f"gunicorn workers changed from {self.workers} to {current}: see {self.log_path}")
        return procs.total_cpu(self.pids)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start(es_url: str, prefix: str, workers: int, threads: int, extra_env: dict[str, str] | None = None) -> Service:
    """The direct sink unless ``extra_env`` says otherwise (the Kafka phases pass the pipeline's variables)."""
    port = free_port()
    # One folder per service for its log and its metrics files, removed when it stops cleanly.
    folder = Path(tempfile.mkdtemp(prefix=f"tracesearch-bench-{port}-"))
    env = {
        **os.environ,
        "TRACESEARCH_ES_URL": es_url,
        "TRACESEARCH_INDEX_PREFIX": prefix,
        "TRACESEARCH_PORT": str(port),
        "TRACESEARCH_WORKERS": str(workers),
        "TRACESEARCH_THREADS": str(threads),
        # The measured path is the direct one: each request waits for the Elasticsearch bulk write.
        "TRACESEARCH_PIPELINE": "direct",
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
        **(extra_env or {}),
    }
    with (folder / "service.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "app:app"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=dies_with_parent,
        )
    service = Service(port, prefix, process, folder)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if _healthy(port) and len(procs.children(process.pid)) == workers:
            service.workers = procs.children(process.pid)
            return service
        time.sleep(0.2)
    tail = service.log_tail()
    stop(service, keep_log=True)
    raise RuntimeError(f"the service did not start:\n{tail}")


def stop(service: Service, keep_log: bool = False) -> None:
    """Stop master and workers; keep the log (and say where) when the run failed."""
    if service.process.poll() is None:
        service.process.terminate()
        try:
            service.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    if keep_log or sys.exc_info()[0] is not None:
        print(f"service log kept: {service.log_path}", file=sys.stderr)
    else:
        shutil.rmtree(service.folder, ignore_errors=True)
