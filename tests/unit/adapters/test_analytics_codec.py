"""Analytics to protobuf: an undefined success rate is unset, not 0; money per currency."""

from __future__ import annotations

from payments.v1 import analytics_pb2

from server.adapters.analytics_codec import figures_to_proto, interval_from_proto
from server.domain.analytics import Figures, SeriesInterval


def test_success_rate_is_unset_when_nothing_was_decided() -> None:
    message = figures_to_proto("BHD", Figures(payment_count=2))
    assert not message.HasField("success_rate")
    assert message.net_volume.currency_code == "BHD"


def test_success_rate_and_its_counts() -> None:
    message = figures_to_proto(
        "JPY", Figures(payment_count=4, gross=10**13, refunded=1, succeeded_count=3, failed_count=1)
    )
    assert message.HasField("success_rate")
    assert message.success_rate == 0.75
    assert (message.succeeded_count, message.failed_count) == (3, 1)
    # Sums may exceed what a single payment may be: no limit on them.
    assert message.net_volume.minor_units == 10**13 - 1


def test_intervals() -> None:
    assert interval_from_proto(analytics_pb2.SERIES_INTERVAL_MONTH) is SeriesInterval.MONTH
    assert interval_from_proto(analytics_pb2.SERIES_INTERVAL_UNSPECIFIED) is None
