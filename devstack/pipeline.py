"""The Kafka pipeline topology of tests and benchmarks: a receiver in Kafka mode and any number of
ingester processes, on a real broker and Elasticsearch, with a topic, dead-letter topic, consumer
group and index prefix of their own.

The receiver is the user's own wrapper around ``launch.start_service`` (the tests query it, the
benchmarks account for its CPU), hence ``_start_receiver``.
"""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from devstack import launch


class Receiver(Protocol):
    def stop(self) -> object: ...


ReceiverT = TypeVar("ReceiverT", bound=Receiver)


class KafkaPipeline(ABC, Generic[ReceiverT]):
    def __init__(
        self,
        es_url: str,
        bootstrap: str,
        prefix: str,
        folder: Path,
        *,
        settings: Mapping[str, str] | None = None,
        ingester_timeout: float = launch.INGESTER_START_TIMEOUT_S,
    ) -> None:
        """``folder`` takes the ingesters' logs; ``settings`` (TRACESEARCH_* variables) go to every
        process of the pipeline, on top of the topology's own."""
        self.es_url = es_url
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.folder = folder
        self.settings = dict(settings or {})
        self.ingester_timeout = ingester_timeout
        self.service: ReceiverT | None = None
        self.ingesters: list[launch.IngesterProcess] = []

    @property
    def env(self) -> dict[str, str]:
        """What the receiver and every ingester get."""
        return launch.app_env(
            self.es_url,
            prefix=self.prefix,
            pipeline="kafka",
            kafka_bootstrap=self.bootstrap,
            settings={**launch.kafka_names(self.prefix), **self.settings},
        )

    @property
    def topics(self) -> list[str]:
        env = self.env
        return [env[launch.ENV_KAFKA_TOPIC], env[launch.ENV_KAFKA_DLQ_TOPIC]]

    @abstractmethod
    def _start_receiver(self, env: dict[str, str]) -> ReceiverT:
        """The service with ``env``, started through ``launch.start_service`` and wrapped as its user
        needs it."""

    def start_service(self) -> ReceiverT:
        self.service = self._start_receiver(self.env)
        return self.service

    def start_ingester(self) -> launch.IngesterProcess:
        ingester = launch.start_ingester(self.env, self.folder, timeout=self.ingester_timeout)
        self.ingesters.append(ingester)
        return ingester

    def stop_ingester(
        self, ingester: launch.IngesterProcess, sig: int = signal.SIGTERM, timeout: float = launch.STOP_TIMEOUT_S
    ) -> int:
        """Signal one ingester (SIGKILL: a crash mid-batch; SIGTERM: it finishes its batch) and wait
        for it; return its exit status."""
        status = ingester.stop(sig, timeout)
        self.ingesters.remove(ingester)
        return status

    def stop(self) -> None:
        """Ingesters first, all signalled at once so that they finish their batches together; then the
        receiver."""
        for ingester in self.ingesters:
            if ingester.alive():
                ingester.process.send_signal(signal.SIGTERM)
        while self.ingesters:
            self.ingesters.pop().wait_or_kill()
        if self.service is not None:
            self.service.stop()
