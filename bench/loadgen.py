"""An open-loop HTTP load generator and a server launcher, shared by the benchmarks that drive the
running API (shop checkouts; card events use the launcher).

Open loop: each request is sent at its own time slot whatever the answers' speed, so a slow server
shows as latency, not as a lower offered rate; latency counts from the slot. The generator runs in
a process of its own, with asyncio speaking plain HTTP/1.1 on keep-alive connections and every
request encoded before the clock starts, so that its work stays small beside the server's on the
same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
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
from dataclasses import dataclass, field
from pathlib import Path
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
    seconds: float  # from the request's slot to its answer
    status: int  # the HTTP status; 0 for no answer (the label then names the error)
    label: str


# What an answer is labelled with, from its status and body (e.g. a JSON field).
Label = Callable[[int, bytes], str]


# How long a server may take to answer its first health check.
START_SECONDS = 300


def serve(
    port: int, workers: int, env: Mapping[str, str], *, plain: bool = False
) -> subprocess.Popen[bytes]:
    """The API under uvicorn with `workers` processes on one TCP socket (`run_server`), or with
    the uvicorn command line as it is (`plain`); returns once it answers its health check."""
    command = [sys.executable, "-m", "bench.loadgen", "--port", str(port)]
    command += ["--workers", str(workers)]
    if plain:
        uvicorn = Path(sys.executable).with_name("uvicorn")
        command = [str(uvicorn), "beyondbank.api:create_app", "--factory", "--port", str(port)]
        command += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, env={**os.environ, **env})  # noqa: S603 - our own server
    # Building the app takes seconds of CPU a worker; on a machine busy with other work, over a
    # minute. A server that exits is given up on at once.
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    if server.poll() is not None:
        raise RuntimeError(f"the server exited while starting (exit {server.returncode})")
    server.send_signal(signal.SIGTERM)
    raise RuntimeError(f"the server did not answer its health check in {START_SECONDS} s")


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


# Connections the generator keeps open at most; more requests than this in flight wait for one,
# and that wait counts in their latency (measured from the request's slot, not from its send).
CONNECTIONS = 256


def _encode(call: Call) -> bytes:
    """The whole HTTP/1.1 request, encoded once before the clock starts."""
    body = b"" if call.json is None else json.dumps(call.json, separators=(",", ":")).encode()
    head = [f"{call.method} {call.path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in call.headers.items()]
    if call.json is not None:
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length (as uvicorn sends JSON)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    status = int(line.split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _send_all(port: int, requests: list[bytes], rate: float, label: Label) -> list[Answer]:
    """An open loop over asyncio streams speaking plain HTTP/1.1 on keep-alive connections: tens
    of microseconds of the generator's CPU a request (the thread pool of httpx clients it replaces
    spent about 5 ms, as much as the server it measured, on the same two cores)."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    room = asyncio.Semaphore(CONNECTIONS)

    async def send(request: bytes, slot: float) -> Answer:
        async with room:
            for attempt in range(2):
                try:
                    fresh = attempt or not idle
                    reader, writer = await _connect(port) if fresh else idle.pop()
                    writer.write(request)
                    status, body = await asyncio.wait_for(_response(reader), timeout=30)
                    break
                except ConnectionError:
                    # The server closed an idle keep-alive connection: again on a new one.
                    if attempt:
                        return Answer(loop.time() - slot, 0, "ConnectionError")
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    return Answer(loop.time() - slot, 0, type(exc).__name__)
            idle.append((reader, writer))
        seconds = loop.time() - slot
        try:
            text = label(status, body)
        except ValueError:  # a body that is not the JSON the label reads
            text = "unreadable"
        return Answer(seconds, status, text)

    started = loop.time()
    tasks = []
    for i, request in enumerate(requests):
        slot = started + i / rate
        pause = slot - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(send(request, slot)))
    answers = list(await asyncio.gather(*tasks))
    for _, writer in idle:
        writer.close()
    return answers


def _send(
    port: int, calls: list[Call], rate: float, label: Label, out: multiprocessing.Queue[Any]
) -> None:
    """The generator's process: encode everything, then send each request at its slot."""
    requests = [_encode(call) for call in calls]
    # A pause of the generator counts as the server's latency for every request due meanwhile
    # (each is measured from its slot). Its collector's full pass over the run's thousands of
    # tasks took 119 ms in a 500/s run (measured with gc.callbacks), a p99 of its own: it does
    # not run while the requests are sent. What they allocate is freed by reference counts.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu = time.process_time()
    started = time.perf_counter()
    try:
        answers = asyncio.run(_send_all(port, requests, rate, label))
    finally:
        gc.enable()
        gc.unfreeze()
    out.put((answers, time.perf_counter() - started, time.process_time() - cpu))


def drive(
    port: int,
    calls: list[Call],
    rate: float,
    label: Label,
    stats: dict[str, float] | None = None,
    server: subprocess.Popen[bytes] | None = None,
) -> tuple[list[Answer], float]:
    """Send `calls` at `rate` per second from a process of its own; the answers and the time.
    `stats`, if given, gets `generator_cpu_s`, the CPU seconds the generator spent sending (on
    this machine it competes with the server for the same cores), and with `server` also
    `server_cpu_s` (the server's processes) and `database_cpu_s` (PostgreSQL's processes,
    whoever they worked for: other work on the machine counts too) and `machine_cpu_s` (every
    core's busy time, the kernel's included: what the 2-core budget is spent on) over the same
    time."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[Any] = context.Queue()
    generator = context.Process(target=_send, args=(port, calls, rate, label, queue))
    server_before = cpu_seconds(server.pid) if server else 0.0
    database_before = database_cpu_seconds() if server else 0.0
    machine_before = machine_cpu_seconds()
    generator.start()
    while True:
        try:
            answers, elapsed, cpu = queue.get(timeout=1)
            break
        except Empty:
            if not generator.is_alive():
                raise RuntimeError(f"the load generator died (exit {generator.exitcode})") from None
    generator.join()
    machine = machine_cpu_seconds() - machine_before
    if stats is not None:
        stats["generator_cpu_s"] = round(cpu, 2)
        stats["machine_cpu_s"] = round(machine, 2)
        if server is not None:
            stats["server_cpu_s"] = round(cpu_seconds(server.pid) - server_before, 2)
            stats["database_cpu_s"] = round(database_cpu_seconds() - database_before, 2)
    return answers, elapsed


def _processes() -> tuple[dict[int, int], dict[int, float], dict[int, str]]:
    """Every process's parent, CPU seconds (user + system) and name (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat.split("(", 1)[1].rsplit(")", 1)[0], stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parents[pid], names[pid] = int(fields[1]), name
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return parents, used, names


def cpu_seconds(root: int) -> float:
    """User and system CPU seconds of a process and its living descendants."""
    parents, used, _ = _processes()
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        tree.update(children)
        frontier.extend(children)
    return sum(used.get(pid, 0.0) for pid in tree)


def database_cpu_seconds() -> float:
    """User and system CPU seconds of the living PostgreSQL processes on this machine."""
    _, used, names = _processes()
    return sum(used[pid] for pid, name in names.items() if name.startswith("postgres"))


def machine_cpu_seconds() -> float:
    """The busy CPU seconds of every core since boot (Linux /proc/stat: all but idle and
    iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


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
