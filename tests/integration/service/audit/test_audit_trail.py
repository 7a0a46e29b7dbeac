"""The audit trail on real databases: effects recorded in their own transaction (so a
rolled-back one leaves none), the refund window override in the record, paging and
filters, and on PostgreSQL no record can be changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import audit_events
from server.domain.errors import FailedPrecondition, InvalidArgument
from server.domain.principal import Principal, Role
from server.service.audit.context import AuditCall, begin_call, end_call
from server.service.audit.queries import audit_query, list_audit_events, prune_audit_events
from server.service.dependencies import Dependencies
from server.service.refunds.commands import create_refund
from tests.integration.service.refunds.test_commands import CALLER, paid, refund

ADMIN = Principal("ops", "https://id.example", frozenset({Role.ADMIN}))


async def _audited(deps: Dependencies, request_id: str, override: str | None) -> None:
    call = AuditCall(
        channel="grpc",
        action="RefundService/CreateRefund",
        request_id=request_id,
        principal=ADMIN,
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )
    token = begin_call(call)
    try:
        payment_id = await paid(deps)
        command = replace(refund(payment_id, request_id, 100), window_override_reason=override)
        await create_refund(deps, CALLER, command)
    finally:
        end_call(token)


async def test_effects_are_recorded_with_who_and_the_override(deps: Dependencies) -> None:
    windowless = replace(deps, refund_window=timedelta(0))
    await _audited(windowless, "r-override", "goodwill, ticket 4711")
    found, token = await list_audit_events(deps, audit_query(0, request_id="r-override"))
    assert token == ""
    refunds = [r for r in found if r.resource_type == "refund"]
    assert [r.reason for r in refunds] == ["SUCCEEDED", "PENDING"]  # newest first
    for record in found:
        assert record.subject == "ops"
        assert record.issuer == "https://id.example"
        assert record.roles == ("admin",)
        assert record.action == "RefundService/CreateRefund"
        assert record.outcome == "OK"
        assert record.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert refunds[0].details == {"window_override_reason": "goodwill, ticket 4711"}
    assert {r.resource_type for r in found} == {"payment", "refund"}


async def test_a_rolled_back_transaction_leaves_no_record(
    deps: Dependencies, engine: AsyncEngine
) -> None:
    windowless = replace(deps, refund_window=timedelta(0))
    with pytest.raises(FailedPrecondition):
        await _audited(windowless, "r-closed", None)
    found, _ = await list_audit_events(deps, audit_query(0, request_id="r-closed"))
    # The payment made on the way is recorded; the refused refund wrote nothing.
    assert found
    assert {r.resource_type for r in found} == {"payment"}


async def test_pages_and_retention(deps: Dependencies) -> None:
    for n in range(3):
        await _audited(deps, f"r-{n}", None)
    everything, _ = await list_audit_events(deps, audit_query(0))
    seen, token = [], ""
    while True:
        page, token = await list_audit_events(deps, audit_query(4), token)
        seen += page
        if not token:
            break
    assert [r.id for r in seen] == [r.id for r in everything]
    assert [r.id for r in everything] == sorted((r.id for r in everything), reverse=True)
    with pytest.raises(InvalidArgument):
        await list_audit_events(deps, audit_query(4, subject="someone"), "bm90LWEtdG9rZW4")
    assert await prune_audit_events(deps, timedelta(days=1)) == 0
    assert await prune_audit_events(deps, timedelta(microseconds=1)) == len(everything)
    assert await list_audit_events(deps, audit_query(0)) == ([], "")


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_records_cannot_be_changed(deps: Dependencies, engine: AsyncEngine) -> None:
    await _audited(deps, "r-1", None)
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as connection:
            await connection.execute(sa.update(audit_events).values(outcome="FORGED"))
