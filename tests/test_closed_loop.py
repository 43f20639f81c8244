"""The closed loop through each transport's `run_caller`: exact counts whatever the server does.

The fast transport sends each request from the callback that ended the last one (a lane
per connection); these runs check that a lane hands every fault back to the engine as one
counted outcome, reconnects, resends only what was never answered, and stops on budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadgen import api
from loadgen.engine.runner import RunOptions, run_scenario
from loadgen.transport.base import Outcome, Request, Target
from loadgen.transport.credentials import CredentialSource
from loadgen.transport.fast import FastTransport
from loadgen.transport.http11 import HTTP11Connection
from tests import faulty
from tests.faulty import Behaviour, RawRequest, raw_server
from tests.servers import hlog_total, scenario

pytestmark = pytest.mark.usefixtures("fake_aws")

REQUESTS = 120
CONCURRENCY = 4


def every(n: int, fault: Behaviour) -> Behaviour:
    """`fault` for every n-th request the server reads (across connections), else a 200."""
    count = 0

    async def behaviour(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        nonlocal count
        count += 1
        return await (fault if count % n == 0 else faulty.answer_ok)(request, writer)

    return behaviour


async def close_after_answer(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    """A 200, then the connection closes without saying so: the client finds out on reuse."""
    writer.write(faulty.ok_response(request))
    return False


async def connection_close(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    """A 200 that says `Connection: close`, then the close."""
    headers = {api.H_CUSTOM_ATTRIBUTES: request.custom_attributes or "", "Connection": "close"}
    writer.write(faulty.response_bytes(headers=headers))
    return False


async def closed_loop(tmp_path: Path, behaviour: Behaviour, transport: str) -> tuple[Any, int]:
    """One closed-loop run of REQUESTS; its totals and the requests the server read."""
    async with raw_server(behaviour) as server:
        result = await run_scenario(
            scenario(
                server.url,
                transport,
                executor="constant-concurrency",
                concurrency=CONCURRENCY,
                requests=REQUESTS,
                timeout="300ms",
            ),
            RunOptions(out=tmp_path / transport, quiet=True),
        )
        read = server.requests
    summary = result.summary
    total = summary.total
    assert summary.interrupted_requests == 0
    assert summary.client_failure is None
    assert hlog_total(result.folder, "ep") == total.requests == REQUESTS
    return total, read


@pytest.mark.parametrize(
    "behaviour",
    [close_after_answer, every(3, close_after_answer), every(10, connection_close)],
    ids=["close-after-each", "close-after-every-3rd", "connection-close-every-10th"],
)
async def test_a_closed_connection_costs_no_request(tmp_path: Path, behaviour: Behaviour) -> None:
    total, read = await closed_loop(tmp_path, behaviour, "fast")
    assert total.ok == REQUESTS, total.errors
    assert total.correlation.matched == REQUESTS
    # resent only when a reused connection closed before any answer: never twice answered
    assert read >= REQUESTS


FAULTS = {
    "503-every-4th": (
        every(4, faulty.error_status(503, "Unavailable", "ServiceUnavailable", b"{}")),
        {"ServiceUnavailable": REQUESTS // 4},
    ),
    "reset-mid-body-every-5th": (
        every(5, faulty.reset_mid_body),
        {api.CONNECTION_ERROR: REQUESTS // 5},
    ),
    "timeout-every-20th": (every(20, faulty.never_answer), {api.TIMEOUT: REQUESTS // 20}),
    "garbage-every-6th": (every(6, faulty.garbage), {api.PROTOCOL_ERROR: REQUESTS // 6}),
}


@pytest.mark.parametrize("transport", ["fast", "botocore"])
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_faults_are_counted_exactly_in_a_closed_loop(
    tmp_path: Path, fault: str, transport: str
) -> None:
    behaviour, errors = FAULTS[fault]
    total, read = await closed_loop(tmp_path, behaviour, transport)
    assert total.errors == errors
    assert total.ok == REQUESTS - sum(errors.values())
    assert total.correlation.matched == total.ok
    assert read == REQUESTS  # nothing answered was sent twice


class BudgetCaller:
    """A closed-loop Caller that sends `budget` requests and keeps what ended."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.outcomes: list[Outcome] = []
        self.failures: list[Exception] = []

    def take(self) -> Request | None:
        if self.budget <= 0:
            return None
        self.budget -= 1
        return Request(Target("ep", "ep"), b"{}", "t", "trace=t")

    due = None

    def park(self, resume: Callable[[], None]) -> bool:
        return False  # a closed loop with nothing to take is done

    def done(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def ok(self, status: int, variant: str | None, echoed: str | None) -> None:
        self.outcomes.append(Outcome(status, None, variant, echoed))

    def failed(self, exc: Exception) -> None:
        self.failures.append(exc)


async def one_connection_transport(url: str) -> FastTransport:
    transport = FastTransport(
        endpoint_url=url,
        region="us-east-1",
        credentials=CredentialSource.static("AKIDEXAMPLE", "secret"),
        max_connections=1,
        connect_timeout=1.0,
        read_timeout=30.0,
    )
    await transport.start()
    return transport


async def test_a_cancelled_lane_drops_its_connection_and_returns_nothing_to_the_pool() -> None:
    async with raw_server(every(3, faulty.never_answer)) as server:
        transport = await one_connection_transport(server.url)
        caller = BudgetCaller(budget=10)
        task = asyncio.get_running_loop().create_task(transport.run_caller(caller))
        while server.requests < 3:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # two answered, the third in flight when cancelled: neither counted nor reused
        assert [outcome.status for outcome in caller.outcomes] == [200, 200]
        assert caller.budget == 7 and not caller.failures
        assert transport.pool.idle_count == 0
        assert not transport.pool.connections
        await transport.close()


class FakeSocket:
    """Takes writes; the test plays the server by calling data_received itself."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None: ...

    def abort(self) -> None: ...


async def idle_transport() -> tuple[FastTransport, HTTP11Connection, FakeSocket]:
    """A fast transport whose pool holds one idle connection on a socket the test plays."""
    transport = await one_connection_transport("http://127.0.0.1:9")
    pool = transport.pool
    assert pool.reserve()
    conn = HTTP11Connection(asyncio.get_running_loop(), pool.closed)
    pool.add(conn)
    socket = FakeSocket()
    conn.connection_made(socket)  # type: ignore[arg-type]
    pool.release(conn)  # idle, as after a first request
    return transport, conn, socket


OK = faulty.response_bytes(headers={api.H_CUSTOM_ATTRIBUTES: "trace=t"})


async def test_a_response_between_cancel_and_resume_is_recorded_and_nothing_more_sent() -> None:
    transport, conn, socket = await idle_transport()
    caller = BudgetCaller(budget=5)
    task = asyncio.get_running_loop().create_task(transport.run_caller(caller))
    await asyncio.sleep(0)  # the lane sends its first request and waits
    assert len(socket.writes) == 1 and conn.in_flight
    task.cancel()
    conn.data_received(OK)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [outcome.status for outcome in caller.outcomes] == [200]  # answered: recorded
    await asyncio.sleep(0)  # the loop turn's batch finds the lane ended: nothing is sent
    assert len(socket.writes) == 1
    assert transport.pool.idle_count == 1
    await transport.close()


async def test_a_lane_that_ended_before_its_cancelled_caller_resumed_gives_back_once() -> None:
    transport, conn, socket = await idle_transport()
    caller = BudgetCaller(budget=1)
    task = asyncio.get_running_loop().create_task(transport.run_caller(caller))
    await asyncio.sleep(0)
    conn.data_received(OK)
    transport._batch.send()  # the budget is spent: the lane ends and gives the connection back
    task.cancel()  # ...and its caller is cancelled before it resumed
    with pytest.raises(asyncio.CancelledError):
        await task
    pool = transport.pool
    assert pool.idle_count == 1  # once, not twice: two callers must never share it
    assert pool.checkout() is conn and pool.checkout() is None
    await transport.close()
