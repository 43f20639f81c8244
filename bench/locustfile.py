"""Locust's side of bench/throughput.py: InvokeEndpoint-shaped POSTs with FastHttpUser.

Each call carries its own trace ID in X-Amzn-SageMaker-Custom-Attributes, as loadgen and the
wrk script send; no think time. The echo is not checked (wrk does not check it either).

    locust -f bench/locustfile.py --headless -u 64 -r 64 -t 10s --host http://127.0.0.1:PORT
"""

from __future__ import annotations

import itertools

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

PATH = "/endpoints/bench/invocations"
BODY = b'{"features": [0.1, 0.2, 0.3]}'


class InvokeEndpointUser(FastHttpUser):
    wait_time = constant(0)
    _users = itertools.count()

    def on_start(self) -> None:
        self.prefix = f"u{next(self._users)}-"
        self.calls = itertools.count()

    @task
    def invoke(self) -> None:
        self.client.post(
            PATH,
            data=BODY,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-Amzn-SageMaker-Custom-Attributes": f"trace={self.prefix}{next(self.calls)}",
            },
            name="invoke",
        )
