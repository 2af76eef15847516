"""The real service under gunicorn, started by devstack.launch as the tests start it, with the CPU
time of its master and workers."""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from devstack import launch

START_TIMEOUT_S = 60.0


@dataclass
class Service:
    running: launch.ServiceProcess
    prefix: str
    # Its log and metrics files, removed when it stops cleanly.
    folder: Path
    workers: list[int]

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def pids(self) -> list[int]:
        return [self.running.pid, *self.workers]

    def cpu_seconds(self) -> float:
        """Master and workers; the worker list is checked so a restarted worker cannot hide CPU."""
        current = procs.children(self.running.pid)
        if current != self.workers:
            raise RuntimeError(
                f"gunicorn workers changed from {self.workers} to {current}: see {self.running.log_path}"
            )
        return procs.total_cpu(self.pids)

    def stop(self, keep_log: bool = False) -> None:
        """Stop master and workers; keep the log (and say where) when the run failed."""
        self.running.stop()
        discard(self.folder, keep=keep_log or sys.exc_info()[0] is not None)


def start(es_url: str, prefix: str, workers: int, threads: int, extra_env: dict[str, str] | None = None) -> Service:
    """The direct sink unless ``extra_env`` says otherwise (the Kafka phases pass the pipeline's variables).

    Measuring starts once every worker has loaded the app, not only forked."""
    port = launch.free_port()
    folder = Path(tempfile.mkdtemp(prefix=f"tracesearch-bench-{port}-"))
    settings = {"TRACESEARCH_WORKERS": str(workers), "TRACESEARCH_THREADS": str(threads), **(extra_env or {})}
    # The measured path is the direct one: each request waits for the Elasticsearch bulk write.
    env = launch.app_env(es_url, prefix=prefix, pipeline="direct", settings=settings)
    try:
        running = launch.start_service(
            env, folder, port=port, metrics_dir=folder / "metrics", workers=workers, timeout=START_TIMEOUT_S
        )
    except launch.LaunchError:
        discard(folder, keep=True)
        raise
    return Service(running, prefix, folder, procs.children(running.pid))


def discard(folder: Path, keep: bool) -> None:
    """Remove a run's folder of logs, or say where it is kept."""
    if keep:
        print(f"logs kept: {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)
