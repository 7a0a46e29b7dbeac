"""A group's metrics endpoint: every process's series, told apart by `process`."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from server.observability.group_metrics import GroupCollector, merge

MEMBER = """\
# HELP payments_rpc_duration_seconds gRPC server calls by method and status code
# TYPE payments_rpc_duration_seconds histogram
payments_rpc_duration_seconds_bucket{le="0.01",rpc_method="GetPayment"} 2.0
payments_rpc_duration_seconds_bucket{le="+Inf",rpc_method="GetPayment"} 3.0
payments_rpc_duration_seconds_count{rpc_method="GetPayment"} 3.0
payments_rpc_duration_seconds_sum{rpc_method="GetPayment"} 0.05
# HELP payments_idempotency_replays_total Requests answered from a stored outcome
# TYPE payments_idempotency_replays_total counter
payments_idempotency_replays_total{method="CreatePayment"} 4.0
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class Fixed(Collector):
    """Members' texts as they were read."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts

    def collect(self) -> Iterable[Metric]:
        return merge(self.texts)


def exposed(collector: Collector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def test_each_series_is_labelled_with_its_process_and_families_are_merged() -> None:
    text = exposed(Fixed({"1": MEMBER, "2": MEMBER.replace("4.0", "6.0")}))
    got = samples(text)
    count = "payments_rpc_duration_seconds_count"
    assert got[(count, (("process", "1"), ("rpc_method", "GetPayment")))] == 3.0
    assert got[(count, (("process", "2"), ("rpc_method", "GetPayment")))] == 3.0
    replays = "payments_idempotency_replays_total"
    assert got[(replays, (("method", "CreatePayment"), ("process", "2")))] == 6.0
    # One HELP and TYPE per family, as Prometheus requires.
    assert text.count("# TYPE payments_rpc_duration_seconds histogram") == 1
    assert text.count("# TYPE payments_idempotency_replays_total counter") == 1


def test_a_member_that_does_not_answer_is_left_out_and_the_supervisor_stays() -> None:
    # Port 1 on loopback refuses at once: the member is restarting, say.
    text = exposed(GroupCollector(lambda: {"1": 1}))
    sources = {dict(labels).get("process") for _, labels in samples(text)}
    assert sources == {"supervisor"}
