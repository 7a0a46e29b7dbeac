"""The pipeline's defaults, for a command that leaves a step out."""

from __future__ import annotations

import pytest

from server.domain.errors import FieldViolation, InvalidArgument
from server.service.dependencies import Dependencies
from server.service.pipeline.command import Command, Kind, run
from server.service.provider import ProviderRejected
from server.service.unit_of_work import UnitOfWork

PLAIN: Kind[str] = Kind(str.encode, bytes.decode, lambda name: name)


async def prepare(uow: UnitOfWork, resume_id: str | None) -> str:
    del uow, resume_id
    return "thing"


@pytest.mark.parametrize(
    ("field", "named"), [("payment_method", "payment_method"), ("", "request")]
)
async def test_a_provider_refusal_without_a_handler_of_its_own_is_an_invalid_argument(
    deps: Dependencies, field: str, named: str
) -> None:
    async def act(prepared: str) -> None:
        raise ProviderRejected("No such PaymentMethod: 'pm_gone'", field=field)

    command: Command[str, None, str] = Command(
        scope=None, kind=PLAIN, resource_id="thing", prepare=prepare, act=act
    )
    with pytest.raises(InvalidArgument) as refused:
        await run(deps, command)
    assert refused.value.reason == "PROVIDER_REJECTED"
    assert refused.value.violations == (FieldViolation(named, "No such PaymentMethod: 'pm_gone'"),)


async def test_a_command_that_prepares_work_but_has_no_provider_step_fails_loudly(
    deps: Dependencies,
) -> None:
    command: Command[str, None, str] = Command(
        scope=None, kind=PLAIN, resource_id="thing", prepare=prepare
    )
    with pytest.raises(AssertionError) as failed:
        await run(deps, command)
    assert str(failed.value) == "a command without a provider step returns Done from step 1"
