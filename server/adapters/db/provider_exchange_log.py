"""Provider exchanges in SQL, sealed with AES-GCM (the exchange id is the associated data)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.db.tables import provider_exchanges
from server.adapters.sealing import KeyRing, Sealed
from server.domain.provider_exchange import ProviderExchange


class SqlExchangeLog:
    def __init__(self, engine: AsyncEngine, keys: KeyRing) -> None:
        self._engine = engine
        self._keys = keys

    async def record(self, exchange: ProviderExchange) -> None:
        body = json.dumps({"request": exchange.request_body, "response": exchange.response_body})
        sealed = self._keys.seal(body.encode(), exchange.id.encode())
        async with self._engine.begin() as connection:
            await connection.execute(
                provider_exchanges.insert(),
                {
                    "id": exchange.id,
                    "create_time": exchange.create_time,
                    "provider": exchange.provider,
                    "method": exchange.method,
                    "path": exchange.path[:255],
                    "status_code": exchange.status_code,
                    "payment_id": exchange.payment_id[:30],
                    "provider_payment_id": exchange.provider_payment_id,
                    "provider_refund_id": exchange.provider_refund_id,
                    "key_id": sealed.key_id,
                    "nonce": sealed.nonce,
                    "sealed_body": sealed.ciphertext,
                },
            )

    async def for_payment(
        self, payment_id: str, provider_payment_id: str
    ) -> list[ProviderExchange]:
        table = provider_exchanges
        matches = [table.c.payment_id == payment_id]
        if provider_payment_id:
            matches.append(table.c.provider_payment_id == provider_payment_id)
        statement = table.select().where(sa.or_(*matches)).order_by(table.c.id)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [self._opened(row) for row in rows]

    def _opened(self, row: sa.Row[Any]) -> ProviderExchange:
        plain = self._keys.open(Sealed(row.key_id, row.nonce, row.sealed_body), row.id.encode())
        body = json.loads(plain) if plain is not None else {"request": "", "response": ""}
        return ProviderExchange(
            id=row.id,
            create_time=row.create_time,
            provider=row.provider,
            method=row.method,
            path=row.path,
            status_code=row.status_code,
            payment_id=row.payment_id,
            provider_payment_id=row.provider_payment_id,
            provider_refund_id=row.provider_refund_id,
            request_body=body["request"],
            response_body=body["response"],
        )
