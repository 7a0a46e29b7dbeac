"""Servers as real processes: one on the zero-configuration SQLite default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server_process import ServerProcess


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`payments serve` in an empty folder, with no database settings at all."""
    folder = tmp_path_factory.mktemp("zero-config")
    server = ServerProcess(folder, env={"PAYMENTS_DATABASE_URL": ""}).start()
    yield server
    assert server.stop() == 0, server.log
