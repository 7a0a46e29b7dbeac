"""Call the payments service: typed stubs (`payments.v1`) and a channel that retries safely.

from payments_client import PaymentsClient, connect

async with PaymentsClient(connect("payments.internal:50051", token=my_token)) as client:
    payment = await client.payments.CreatePayment(request)
"""

from payments_client.channel import PaymentsClient, channel_options, connect, target_of
from payments_client.errors import error_info
from payments_client.interceptors import TokenSource, fill_request_id, new_request_id
from payments_client.service_config import RetryPolicy, default_deadlines, service_config

__all__ = [
    "PaymentsClient",
    "RetryPolicy",
    "TokenSource",
    "channel_options",
    "connect",
    "default_deadlines",
    "error_info",
    "fill_request_id",
    "new_request_id",
    "service_config",
    "target_of",
]
