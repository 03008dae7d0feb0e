"""An open-loop HTTP load generator and a server launcher, shared by the benchmarks that drive the
running API (card events, shop checkouts).

Open loop: each request is sent at its own time slot whatever the answers' speed (each on a thread
of a large pool), so a slow server shows as latency, not as a lower offered rate. The generator
runs in a process of its own, so that its work does not share the server's interpreter.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a load: what to send, and a label for its answer (e.g. a JSON field)."""

    method: str
    path: str
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    seconds: float
    status: int
    label: str


def serve(port: int, workers: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """The API under uvicorn with `workers` processes on one TCP socket (`run_server`); returns
    once it answers its health check."""
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, env={**os.environ, **env})  # noqa: S603 - our own server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.send_signal(signal.SIGTERM)
    raise RuntimeError("the server did not start")


def run_server(port: int, workers: int) -> None:
    """What `uvicorn --workers N` does, on a listening socket made as a TCP socket.

    `uvicorn --workers` binds a socket with protocol 0, and asyncio then leaves Nagle's algorithm
    on for every connection it accepts (it sets TCP_NODELAY only on sockets that say they are
    TCP): an answer written in two parts (headers, body) waits for the client's delayed ACK,
    about 40 ms a request on a keep-alive connection. (`beyondbank serve`, one process, binds
    through asyncio and is not affected.)"""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "beyondbank.api:create_app",
        factory=True,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.set_inheritable(True)
    if workers > 1:
        Multiprocess(config, sockets=[listener]).run()
    else:
        uvicorn.Server(config).run(sockets=[listener])


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def _send(
    port: int,
    calls: list[Call],
    rate: float,
    label: Callable[[httpx.Response], str],
    out: multiprocessing.Queue[Any],
) -> None:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=30,
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
    ) as client:

        def send(call: Call) -> Answer:
            began = time.perf_counter()
            try:
                response = client.request(
                    call.method, call.path, json=call.json, headers=dict(call.headers)
                )
            except httpx.HTTPError as exc:  # counted as an answer of its own, not lost
                return Answer(time.perf_counter() - began, 0, type(exc).__name__)
            seconds = time.perf_counter() - began
            try:
                text = label(response)
            except ValueError:  # a body that is not the JSON the label reads
                text = "unreadable"
            return Answer(seconds, response.status_code, text)

        started = time.perf_counter()
        futures = []
        with ThreadPoolExecutor(max_workers=256) as pool:
            for i, call in enumerate(calls):
                pause = started + i / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                futures.append(pool.submit(send, call))
            answers = [f.result() for f in futures]
        elapsed = time.perf_counter() - started
    out.put((answers, elapsed, time.process_time()))


def drive(
    port: int,
    calls: list[Call],
    rate: float,
    label: Callable[[httpx.Response], str],
    stats: dict[str, float] | None = None,
) -> tuple[list[Answer], float]:
    """Send `calls` at `rate` per second from a process of its own; the answers and the time.
    `stats`, if given, gets `generator_cpu_s`: the CPU seconds the generator's process used (on
    this machine it competes with the server for the same cores)."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[Any] = context.Queue()
    generator = context.Process(target=_send, args=(port, calls, rate, label, queue))
    generator.start()
    while True:
        try:
            answers, elapsed, cpu = queue.get(timeout=1)
            break
        except Empty:
            if not generator.is_alive():
                raise RuntimeError(f"the load generator died (exit {generator.exitcode})") from None
    generator.join()
    if stats is not None:
        stats["generator_cpu_s"] = round(cpu, 2)
    return answers, elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(answers: list[Answer], elapsed: float, offered: float) -> dict[str, Any]:
    """Rates, latency percentiles (ms), and the answers' statuses and labels."""
    latencies = [a.seconds * 1000 for a in answers]
    return {
        "offered_rate": offered,
        "requests": len(answers),
        "achieved_rate": round(len(answers) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "http": dict(Counter(str(a.status) for a in answers)),
        "outcomes": dict(Counter(a.label for a in answers if a.label)),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the API for a benchmark (see `serve`).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    run_server(arguments.port, arguments.workers)
