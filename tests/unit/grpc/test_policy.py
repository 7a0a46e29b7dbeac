"""The RPC -> roles table covers every method the server serves, and nothing else."""

from __future__ import annotations

from google.protobuf import descriptor_pool

from server.domain.principal import Role
from server.grpc.app import SERVICE_NAMES
from server.grpc.auth.policy import RULES, is_open


def served_methods() -> set[str]:
    pool = descriptor_pool.Default()
    return {
        f"/{name}/{method.name}"
        for name in SERVICE_NAMES
        for method in pool.FindServiceByName(name).methods
    }


def test_every_served_method_has_a_rule() -> None:
    missing = served_methods() - RULES.keys()
    assert not missing, f"add these to server/grpc/auth/policy.py RULES: {sorted(missing)}"


def test_every_rule_names_a_served_method() -> None:
    assert RULES.keys() <= served_methods()


def test_admins_may_do_everything() -> None:
    assert all(Role.ADMIN in rule.roles for rule in RULES.values())


def test_only_health_and_reflection_are_open() -> None:
    assert is_open("/grpc.health.v1.Health/Check")
    assert is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not any(is_open(method) for method in served_methods())


def test_writes_spend_the_rate_limit() -> None:
    reads = ("/Get", "/List")
    for method, rule in RULES.items():
        assert rule.mutating != any(part in method for part in reads), method
