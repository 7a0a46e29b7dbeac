"""A real `payments gateway` process (the webhook sidecar) on a free port."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.server_process import PAYMENTS, PaymentsProcess


def http_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.TransportError:
        return None


class GatewayProcess(PaymentsProcess):
    """`payments gateway`, up when GET /healthz answers 200."""

    kind = "gateway"

    def __init__(
        self, cwd: Path, env: dict[str, str] | None = None, executable: str = PAYMENTS
    ) -> None:
        super().__init__(cwd, ("gateway",), env or {}, executable)
        self.env["PAYMENTS_GATEWAY_ADDRESS"] = self.address
        self.url = f"http://{self.address}"

    def ready(self) -> bool:
        return http_status(f"{self.url}/healthz", timeout=0.5) == 200
