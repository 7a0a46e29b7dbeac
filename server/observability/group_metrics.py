"""One /metrics for a group of server processes: every process's series, labelled `process`.

Each server process of a group serves its own registry on a loopback port only the
supervisor reads; the supervisor serves PAYMENTS_METRICS_ADDRESS, and every scrape of it
gathers its own series (the jobs', `process="supervisor"`) and each member's (`process`
is the member's index, which a restarted member keeps). Prometheus then sees one target
per pod, as with one process, and `sum without (process)` adds the group up.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from server.observability.metrics import serve_metrics

_log = logging.getLogger(__name__)
LABEL = "process"
SUPERVISOR = "supervisor"
# A member that does not answer within this is left out of that scrape (it may be
# restarting); the scrape itself must stay well under Prometheus's own timeout.
MEMBER_TIMEOUT_S = 2.0


def merge(texts: Mapping[str, str]) -> list[Metric]:
    """The families of several exposition texts as one, each sample labelled by its source."""
    families: dict[str, Metric] = {}
    for source, text in texts.items():
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
            merged.samples += [
                sample._replace(labels={**sample.labels, LABEL: source})
                for sample in family.samples
            ]
    return list(families.values())


def _member_text(port: int) -> str | None:
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=MEMBER_TIMEOUT_S) as answer:
            return bytes(answer.read()).decode()
    except OSError:
        return None


class GroupCollector(Collector):
    """Collects at scrape time: the supervisor's registry and each member's endpoint."""

    def __init__(self, members: Callable[[], Mapping[str, int]]) -> None:
        self._members = members

    def collect(self) -> Iterable[Metric]:
        texts = {SUPERVISOR: generate_latest(REGISTRY).decode()}
        for name, port in self._members().items():
            text = _member_text(port)
            if text is None:
                _log.warning("metrics: server process %s did not answer; left out", name)
            else:
                texts[name] = text
        return merge(texts)


def serve_group_metrics(address: tuple[str, int], members: Callable[[], Mapping[str, int]]) -> int:
    """Serve the group's merged metrics on `address`; the port it got."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GroupCollector(members))
    return serve_metrics(address, registry)
