"""The contract walked by hypothesis: every RPC the protobuf descriptors name, with
requests built from its descriptor, against a real server (PostgreSQL, auth on) and a
real webhook sidecar.

Whatever comes in, the answer is never INTERNAL or UNKNOWN, says nothing internal (SQL,
file paths, exception classes), carries exactly one ErrorInfo when it is an error, and
an invalid request stores nothing. Afterwards no log line holds a traceback, a secret
or a card number. A new RPC is walked without editing this file: the services come
from the descriptor pool.

`make test` runs PAYMENTS_FUZZ_EXAMPLES (default 6) examples per RPC and per check;
`make fuzz` runs many more (see docs/testing.md).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import pkgutil
import re
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import httpx
import payments.v1
import pytest
import sqlalchemy as sa
from google.protobuf import descriptor, message, message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.adapters.db.engine import create_engine
from server.adapters.db.tables import metadata
from server.domain.card_numbers import contains_card_number
from tests.e2e.test_auth_matrix import AUTH_ENV
from tests.support.auth import JWT_SECRET, bearer, hs256_token
from tests.support.contract_strategies import (
    altered_tokens,
    edge_requests,
    json_bodies,
    messages,
)
from tests.support.databases import create_postgres_database, drop_postgres_database
from tests.support.gateway_process import GatewayProcess
from tests.support.rich_status import field_violations
from tests.support.server_process import ServerProcess
from tests.support.stripe_events import signed_headers

T = TypeVar("T")
Code = grpc.StatusCode
EXAMPLES = int(os.environ.get("PAYMENTS_FUZZ_EXAMPLES", "6"))
NEVER = (Code.INTERNAL, Code.UNKNOWN)
# What no answer may show of how the server is built.
INTERNAL_DETAIL = re.compile(
    r"Traceback|File \"|\.py\b|sqlalchemy|asyncpg|aiosqlite|psycopg|\bSELECT\b|\bINSERT\b"
    r"|\bUPDATE\b|\b[A-Z][A-Za-z]*(Error|Exception)\b|/work/|site-packages"
)
WEBHOOK_SECRET = "whsec_contract_fuzz_0123"
USER = "user-fuzz"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("PAYMENTS_FUZZ_RANDOM") is None,
    suppress_health_check=list(HealthCheck),
)


def our_methods() -> list[descriptor.MethodDescriptor]:
    """Every method of every service in the payments.v1 protobuf package."""
    found = []
    for module in pkgutil.iter_modules(payments.v1.__path__):
        if module.name.endswith("_pb2"):
            loaded = importlib.import_module(f"payments.v1.{module.name}")
            for service in loaded.DESCRIPTOR.services_by_name.values():
                found.extend(service.methods)
    return sorted(found, key=lambda m: m.full_name)


METHODS = our_methods()
PAGED = [m for m in METHODS if "page_token" in m.input_type.fields_by_name]


class Loop:
    """One event loop in a thread, for the database reads the checks make."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Stack:
    server: ServerProcess
    gateway: GatewayProcess
    channel: grpc.Channel
    database: str
    loop: Loop
    engine: Any = None
    payment_id: str = ""
    known: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    callers: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def call(
        self,
        method: descriptor.MethodDescriptor,
        request: bytes,
        metadata: tuple[tuple[str, str], ...],
    ) -> tuple[Code, bytes | None, grpc.RpcError | None]:
        rpc = self.channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        try:
            return Code.OK, rpc(request, metadata=metadata, timeout=30), None
        except grpc.RpcError as error:
            return error.code(), None, error

    def rows(self) -> tuple[int, ...]:
        # The audit trail records refusals too, by design; every other table must stay put.
        counts = [
            sa.select(sa.func.count()).select_from(table).scalar_subquery()
            for table in metadata.sorted_tables
            if not table.name.startswith("audit")
        ]

        async def read() -> tuple[int, ...]:
            async with self.engine.connect() as connection:
                return tuple((await connection.execute(sa.select(*counts))).one())

        return self.loop.run(read())


def output_class(method: descriptor.MethodDescriptor) -> type[message.Message]:
    return message_factory.GetMessageClass(method.output_type)


def strings_in(request: message.Message) -> list[str]:
    """Every string the request holds, to tell what an answer merely echoes."""
    found: list[str] = []
    for field_descriptor, value in request.ListFields():
        values = value if field_descriptor.is_repeated else [value]
        if hasattr(value, "items"):
            values = [*value.keys(), *value.values()]
        for item in values:
            if isinstance(item, message.Message):
                found += strings_in(item)
            elif isinstance(item, str):
                found.append(item)
    return found


def check_answer(code: Code, error: grpc.RpcError | None, echoed: list[str], where: str) -> None:
    assert code not in NEVER, f"{where}: {error}"
    if error is None:
        return
    text = str(error.details() or "")
    for value in sorted(echoed, key=len, reverse=True):
        if value:
            text = text.replace(value, "")
    assert not INTERNAL_DETAIL.search(text), f"{where}: {error.details()!r}"
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"{where}: {code} without a rich status"
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, where
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    assert info.domain == "payments.v1", where
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", info.reason), where


def _seed(stack: Stack) -> None:
    """Two of everything, so that ids are known and every List RPC has a next page."""
    admin = stack.callers["admin"]

    def make(rpc: str, **values: Any) -> Any:
        method = next(m for m in METHODS if m.name == rpc)
        request = message_factory.GetMessageClass(method.input_type)(**values)
        code, raw, error = stack.call(method, request.SerializeToString(), admin)
        assert code is Code.OK, error
        assert raw is not None
        return output_class(method).FromString(raw)

    money = {"currency_code": "USD", "minor_units": 2500}
    for n in (1, 2):
        payment = make(
            "CreatePayment",
            request_id=f"fuzz-seed-pay-{n}",
            order_id=f"fuzz-seed-order-{n}",
            user_id=USER,
            amount=money,
            payment_method_id="pm_card_visa",
            confirm=True,
        )
        method = make(
            "AttachPaymentMethod",
            request_id=f"fuzz-seed-pm-{n}",
            user_id=USER,
            provider_payment_method_id="pm_card_visa",
        )
        plan = make(
            "CreatePlan",
            request_id=f"fuzz-seed-plan-{n}",
            name=f"Fuzz {n}",
            price=money,
            interval=3,
            interval_count=1,
        )
        subscription = make(
            "CreateSubscription",
            request_id=f"fuzz-seed-sub-{n}",
            user_id=USER,
            plan_id=plan.id,
            payment_method_id=method.id,
        )
        stack.known += [payment.id, method.id, plan.id, subscription.id]
    for n in (1, 2):
        refund = make(
            "CreateRefund",
            request_id=f"fuzz-seed-refund-{n}",
            payment_id=payment.id,
            amount={"currency_code": "USD", "minor_units": 10},
        )
        stack.known.append(refund.id)
    stack.payment_id = payment.id
    stack.known += [USER, "pm_card_visa", "pm_card_chargeDeclined", "USD", "Europe/Paris"]
    for method in PAGED:
        request = message_factory.GetMessageClass(method.input_type)(page_size=1)
        for name in ("user_id", "payment_id"):
            if name in method.input_type.fields_by_name:
                setattr(request, name, USER if name == "user_id" else payment.id)
        code, raw, _ = stack.call(method, request.SerializeToString(), admin)
        if code is Code.OK and raw is not None:
            response: Any = output_class(method).FromString(raw)
            if response.next_page_token:
                stack.tokens[method.full_name] = response.next_page_token
    assert stack.tokens, "no List RPC gave a second page"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("contract")
    database = create_postgres_database("payments_fuzz")
    env = {
        **AUTH_ENV,
        "PAYMENTS_DATABASE_URL": database,
        "PAYMENTS_LOG_LEVEL": "DEBUG",
        "PAYMENTS_PROVIDER_TIMEOUT_SECONDS": "2",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    callers: dict[str, tuple[tuple[str, str], ...]] = {
        "admin": bearer(hs256_token("ops", ("admin",))),
        "service": bearer(hs256_token("checkout", ("service",))),
        "customer": bearer(hs256_token(USER)),
        "other customer": bearer(hs256_token("user-other")),
    }
    server = ServerProcess(folder, env=env).start()
    gateway = GatewayProcess(folder, env=env).start()
    loop = Loop()
    try:
        with grpc.insecure_channel(server.address) as channel:
            built = Stack(server, gateway, channel, database, loop, callers=callers)
            built.engine = create_engine(database, pool_size=1)
            _seed(built)
            yield built
            loop.run(built.engine.dispose())
    finally:
        loop.close()
        gateway_code, server_code = gateway.stop(), server.stop()
        drop_postgres_database(database)
    assert (server_code, gateway_code) == (0, 0), server.log + gateway.log
    for name, log in (("server", server.log), ("gateway", gateway.log)):
        assert "Traceback" not in log, f"{name} log:\n{log[-5000:]}"
        assert not contains_card_number(log), name
        for secret in (
            JWT_SECRET,
            WEBHOOK_SECRET,
            *(pair[1] for caller in callers.values() for pair in caller),
        ):
            assert secret not in log, name


def _ids(methods: list[descriptor.MethodDescriptor]) -> list[str]:
    return [m.full_name.removeprefix("payments.v1.") for m in methods]


@pytest.mark.parametrize("method", METHODS, ids=_ids(METHODS))
def test_every_request_gets_a_clear_answer_and_an_invalid_one_stores_nothing(
    stack: Stack, method: descriptor.MethodDescriptor
) -> None:
    @FUZZ_SETTINGS
    @given(data=st.data())
    def walk(data: st.DataObject) -> None:
        request = data.draw(messages(method.input_type, stack.known), label="request")
        caller = data.draw(st.sampled_from(sorted(stack.callers)), label="caller")
        before = stack.rows()
        code, _, error = stack.call(method, request.SerializeToString(), stack.callers[caller])
        check_answer(code, error, strings_in(request), method.full_name)
        if code in (Code.INVALID_ARGUMENT, Code.UNAUTHENTICATED, Code.PERMISSION_DENIED):
            assert stack.rows() == before, f"{method.full_name}: {code} stored something"

    walk()


@pytest.mark.parametrize("method", METHODS, ids=_ids(METHODS))
def test_each_edge_value_in_each_field(stack: Stack, method: descriptor.MethodDescriptor) -> None:
    rows = stack.rows()
    for request in edge_requests(method.input_type):
        code, _, error = stack.call(method, request.SerializeToString(), stack.callers["admin"])
        check_answer(code, error, strings_in(request), f"{method.full_name} {request}")
        before, rows = rows, stack.rows()
        if code is Code.INVALID_ARGUMENT:
            assert rows == before, f"{method.full_name}: {code} stored something"


@pytest.mark.parametrize("method", METHODS, ids=_ids(METHODS))
def test_bytes_that_do_not_parse_are_refused_after_authentication(
    stack: Stack, method: descriptor.MethodDescriptor
) -> None:
    @FUZZ_SETTINGS
    @given(data=st.data())
    def walk(data: st.DataObject) -> None:
        request = data.draw(messages(method.input_type, stack.known), label="request")
        serialized = request.SerializeToString()
        raw = data.draw(
            st.one_of(
                st.binary(min_size=1, max_size=200),
                st.integers(0, max(0, len(serialized) - 1)).map(lambda n: serialized[:n]),
                st.just(b"\x0a\xff\xff\xff\xff\x0f"),
            ),
            label="bytes",
        )
        code, _, error = stack.call(method, raw, ())
        assert code is Code.UNAUTHENTICATED, error
        code, _, error = stack.call(method, raw, stack.callers["admin"])
        check_answer(code, error, [], method.full_name)

    walk()


header_names = st.from_regex(r"x-[a-z0-9][a-z0-9-]{0,30}", fullmatch=True)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=400
)
trace_headers = st.one_of(
    st.tuples(st.just("traceparent"), header_values),
    st.tuples(st.just("tracestate"), header_values),
    st.tuples(
        st.just("tracestate"),
        st.lists(st.from_regex(r"[a-z]{1,8}=[a-z0-9]{1,200}", fullmatch=True), max_size=40).map(
            ",".join
        ),
    ),
)


@FUZZ_SETTINGS
@given(
    headers=st.lists(st.one_of(st.tuples(header_names, header_values), trace_headers), max_size=20)
)
def test_many_and_long_headers_never_break_a_call(
    stack: Stack, headers: list[tuple[str, str]]
) -> None:
    method = next(m for m in METHODS if m.name == "CreatePayment")
    request = message_factory.GetMessageClass(method.input_type)(
        request_id=f"fuzz-headers-{len(stack.known)}-{abs(hash(tuple(headers)))}",
        order_id=f"fuzz-headers-order-{abs(hash(tuple(headers)))}",
        user_id=USER,
        amount={"currency_code": "USD", "minor_units": 700},
    )
    metadata = (*stack.callers["admin"], *headers)
    code, _, error = stack.call(method, request.SerializeToString(), metadata)
    check_answer(code, error, [], "headers")


@pytest.mark.parametrize("method", PAGED, ids=_ids(PAGED))
def test_an_altered_page_token_is_invalid_argument(
    stack: Stack, method: descriptor.MethodDescriptor
) -> None:
    # A List RPC whose seeds give no second page gets another List's token: a foreign
    # token, which must be refused just the same.
    own = method.full_name in stack.tokens
    genuine = stack.tokens[method.full_name] if own else next(iter(stack.tokens.values()))

    @FUZZ_SETTINGS
    @given(token=altered_tokens(genuine))
    def walk(token: str) -> None:
        request = message_factory.GetMessageClass(method.input_type)(page_size=1)
        for name in ("user_id", "payment_id"):
            if name in method.input_type.fields_by_name:
                value = USER if name == "user_id" else stack.payment_id
                setattr(request, name, value)
        request.page_token = token  # type: ignore[attr-defined]
        code, _, error = stack.call(method, request.SerializeToString(), stack.callers["admin"])
        if token == "" or (own and token == genuine):
            return
        assert code is Code.INVALID_ARGUMENT, (token, error)
        assert error is not None
        assert "page_token" in field_violations(error)

    walk()


@FUZZ_SETTINGS
@given(body=json_bodies())
def test_webhook_bodies_never_answer_5xx(stack: Stack, body: bytes) -> None:
    url = f"{stack.gateway.url}/webhooks/stripe"
    signed = httpx.post(url, content=body, headers=signed_headers(body, WEBHOOK_SECRET), timeout=30)
    assert signed.status_code < 500, signed.text
    forged = httpx.post(url, content=body, headers=signed_headers(body, "whsec_forged"), timeout=30)
    assert forged.status_code == 400


def test_the_walk_covers_every_service_in_the_package() -> None:
    services = {m.containing_service.full_name for m in METHODS}
    assert len(services) >= 5
    assert len(METHODS) >= 27
    assert PAGED
