"""The supervisor's checks before it starts a group (the group itself: tests/e2e)."""

from __future__ import annotations

import socket

import pytest

from server.config import ConfigError
from server.group_member import GroupMember
from server.process_group import check_port_free, describe_exit


def test_a_port_another_process_listens_on_is_refused() -> None:
    # With SO_REUSEPORT the members' bind would succeed beside the stranger's socket.
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_port_free(f"127.0.0.1:{port}")
        with pytest.raises(ConfigError, match="cannot listen on"):
            check_port_free(f"[::]:{port}")  # every interface covers 127.0.0.1 too
    check_port_free(f"127.0.0.1:{port}")  # free again


@pytest.mark.parametrize("address", ["127.0.0.1:0", "unix:/tmp/payments.sock", "[::]"])
def test_a_group_needs_a_fixed_tcp_port(address: str) -> None:
    with pytest.raises(ConfigError, match="needs a fixed TCP port"):
        check_port_free(address)


def test_the_member_argument_round_trips() -> None:
    member = GroupMember(2, 4321)
    assert GroupMember.parse(member.argument()) == member


def test_exits_are_described_for_the_log() -> None:
    assert describe_exit(3) == "code 3"
    assert describe_exit(-9) == "signal SIGKILL"
