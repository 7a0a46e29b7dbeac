"""A real localstripe process (a stateful fake of Stripe's API) on a free port.

Starting it must never be optional: a test that needs Stripe fails, loudly,
when localstripe does not answer, instead of being skipped.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import stripe

from tests.support.server_process import free_port
from tests.support.shared_services import current_slot

LOCALSTRIPE = str(Path(sys.executable).parent / "localstripe")
# Any key that starts with sk_ will do for localstripe.
READY_KEY = "sk_test_ready"


class LocalStripe:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"localstripe-{self.port}.log"
        self.cwd = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> LocalStripe:
        log = self.log_path.open("wb")
        # --from-scratch: never load the state another run left in /tmp.
        self.process = subprocess.Popen(
            [LOCALSTRIPE, "--port", str(self.port), "--from-scratch"],
            cwd=self.cwd,
            stdout=log,
            stderr=log,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"localstripe exited with {self.process.returncode}:\n{self.log}"
                )
            try:
                reply = httpx.get(
                    f"{self.url}/v1/customers",
                    headers={"Authorization": f"Bearer {READY_KEY}"},
                    timeout=1,
                )
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            if reply.status_code == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"localstripe did not answer on {self.url} in {timeout} s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def card_method(self, api_key: str, number: str) -> str:
        """A PaymentMethod for a test card number (4000002500003155: 3-D Secure), its id."""
        client = stripe.StripeClient(api_key, base_addresses={"api": self.url})
        method = client.v1.payment_methods.create(
            {
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            }
        )
        return str(method.id)


@contextmanager
def localstripe(folder: Path) -> Iterator[str]:
    """A localstripe for this pytest process: its own, or its shared slot's."""
    slot = current_slot()
    if slot is not None:
        yield slot.localstripe_url()
        return
    server = LocalStripe(folder).start()
    try:
        yield server.url
    finally:
        server.stop()
