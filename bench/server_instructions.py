"""Instructions the server executes per call, counted by valgrind: a figure noise cannot move.

CPU time per call moves with whatever else the machine runs, and on a shared VM by a
third between minutes. Instructions do not: `valgrind --tool=callgrind` counts every one
the server process executes (all its threads), the same for the same code and the same
calls. So a change to the hot path shows here even when the machine is too noisy for
bench/grpc_load.py to tell it apart.

The server runs as bench/grpc_load.py runs it (production settings: HS256 auth, JSON
logs, telemetry without an exporter, the mock provider) on a private PostgreSQL
cluster, but under callgrind and without the background jobs, whose timers would add
counts that depend on how long the run took. One client makes the calls one after
another, per RPC: Health/Check (the baseline), CreatePayment (confirm), GetPayment and
ListPayments (one user's first page of 20). Between RPCs the script asks callgrind to
dump its counters (`callgrind_control --dump`), so each RPC's total is its own. Under
callgrind the server runs some 50 times slower; a run takes about five minutes.

    .venv/bin/python bench/server_instructions.py [--calls 200] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
from payments.v1 import payments_pb2

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.grpc_load import (  # noqa: E402
    CREATE_PAYMENT,
    GET_PAYMENT,
    HEALTH_CHECK,
    LIST_PAYMENTS,
    USERS,
    BenchError,
    Credentials,
    Database,
    Metadata,
    create_payload,
    create_templates,
    free_port,
    get_payloads,
    health_payloads,
    list_payloads,
    migrate,
    payments_command,
    server_environment,
    stop_server,
    wait_until_serving,
)

# Under callgrind the interpreter starts in a minute or two, not a second.
START_SECONDS = 300.0
CALL_TIMEOUT_SECONDS = 60.0
_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)

Call = Callable[..., bytes]


def _dump(pid: int, label: str, folder: Path) -> int:
    """Dump callgrind's counters (which zeroes them) and return the instructions in the dump."""
    before = set(folder.glob("callgrind.out*"))
    subprocess.run(
        ["callgrind_control", "--dump=" + label, str(pid)], check=True, capture_output=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = sorted(set(folder.glob("callgrind.out*")) - before)
        for path in new:
            found = _TOTAL.search(path.read_bytes())
            if found:
                return int(found.group(1))
        time.sleep(0.2)
    raise BenchError(f"callgrind wrote no dump for {label}")


def _calls(
    call: Call, payloads: Sequence[bytes], metadata: Sequence[Metadata], count: int
) -> list[bytes]:
    replies = []
    for n in range(count):
        replies.append(
            call(
                payloads[n % len(payloads)],
                metadata=metadata[n % len(metadata)] if metadata else None,
                timeout=CALL_TIMEOUT_SECONDS,
            )
        )
    return replies


def measure(database: Database, calls: int, folder: Path) -> dict[str, int]:
    credentials = Credentials.new()
    target = f"127.0.0.1:{free_port()}"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={folder}/callgrind.out.%p",
        "--dump-instr=no",
        *payments_command(),
        "serve",
        "--no-jobs",
    ]
    env = server_environment(database.dsn, target, production=credentials)
    with tempfile.TemporaryFile("w+", prefix="payments-instructions-", suffix=".log") as log:
        server = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            wait_until_serving(server, target, log, START_SECONDS)
            return _drive(server.pid, target, credentials, calls, folder)
        finally:
            stop_server(server)


def _drive(
    pid: int, target: str, credentials: Credentials, calls: int, folder: Path
) -> dict[str, int]:
    counts: dict[str, int] = {}
    with grpc.insecure_channel(target) as channel:

        def method(name: str) -> Call:
            return channel.unary_unary(name, None, None)  # bytes in, bytes out

        service = credentials.service()
        templates = create_templates()
        creates = [create_payload(templates, 1, n) for n in range(calls)]
        # A few calls of each first, outside the counts: the first call of a method
        # builds what later calls reuse (prepared statements, the method's chain).
        _calls(method(HEALTH_CHECK), health_payloads(), (), 5)
        _calls(
            method(CREATE_PAYMENT), [create_payload(templates, 2, n) for n in range(5)], service, 5
        )
        _dump(pid, "warm-up", folder)
        _calls(method(HEALTH_CHECK), health_payloads(), (), calls)
        counts["Health/Check"] = _dump(pid, "health", folder)
        created = _calls(method(CREATE_PAYMENT), creates, service, calls)
        counts["CreatePayment"] = _dump(pid, "create", folder)
        ids = [payments_pb2.Payment.FromString(raw).id for raw in created]
        _calls(method(GET_PAYMENT), get_payloads(ids), service, calls)
        counts["GetPayment"] = _dump(pid, "get", folder)
        # Each user's own token with each user's filter; every user has calls / 100 payments.
        _calls(method(LIST_PAYMENTS), list_payloads(), credentials.customers(), calls)
        counts["ListPayments"] = _dump(pid, "list", folder)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=200, help="calls per RPC (default 200)")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep callgrind's dumps in this folder, one per RPC, for callgrind_annotate",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian's package valgrind)", file=sys.stderr)
        return 1
    if len(USERS) > args.calls:
        print(f"--calls must be at least {len(USERS)}: every user needs a payment", file=sys.stderr)
        return 1
    database = Database.private()
    try:
        migrate(database.dsn)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            counts = measure(database, args.calls, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="payments-callgrind-") as folder:
                counts = measure(database, args.calls, Path(folder))
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        database.remove()
    health = counts["Health/Check"] / args.calls
    print(f"instructions per call, {args.calls} calls each, one after another (valgrind callgrind)")
    print(f"{'RPC':<15} {'instructions':>14} {'x Health/Check':>15}")
    for label, total in counts.items():
        per_call = total / args.calls
        print(f"{label:<15} {per_call:>14,.0f} {per_call / health:>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
