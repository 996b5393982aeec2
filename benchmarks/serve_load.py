"""Load test of `elcrec serve` on 127.0.0.1: a fixed number of POST /recommend
requests (real sequences from the run's own data, k = 20) at a fixed
concurrency, then it stops.  The load generator (plain asyncio streams, one process)
runs on the same machine as the server and competes with it for the cores.

    python benchmarks/serve_load.py RUN_DIR --requests 10000 --concurrency 16

Writes benchmarks/results/serve_load.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from elcrec.data import id_list
from elcrec.runs import RunFolder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(port: int, bodies: list[bytes], concurrency: int) -> tuple[list[float], int]:
    """``concurrency`` keep-alive connections, each sending its next request as
    soon as the last answer arrived.  Plain asyncio streams: a light client, so
    that the generator takes as little of the shared cores as it can."""
    latencies: list[float] = []
    errors = 0
    todo = iter(bodies)

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in todo:
            head = (
                f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            t0 = time.perf_counter()
            writer.write(head.encode() + body)
            await writer.drain()
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            errors += not status.startswith(b"HTTP/1.1 200")
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    data = RunFolder(args.run).load_data()
    flat, offsets, item_ids = data.flat, data.offsets, id_list(data.item_ids)
    rng = np.random.default_rng(args.seed)
    users = rng.integers(0, len(offsets) - 1, args.requests + args.warmup)
    bodies = [
        json.dumps(
            {"items": [item_ids[i - 1] for i in flat[offsets[u] : offsets[u + 1]]], "k": args.k}
        ).encode()
        for u in users
    ]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "elcrec.cli", "serve", args.run, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(load(port, bodies[: args.warmup], args.concurrency))
        t0 = time.perf_counter()
        latencies, errors = asyncio.run(load(port, bodies[args.warmup :], args.concurrency))
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=30)
    ms = np.array(latencies) * 1000
    payload = {
        "requests": len(latencies),
        "errors": int(errors),
        "concurrency": args.concurrency,
        "rps": len(latencies) / wall,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "wall_s": wall,
        "k": args.k,
        "run": args.run,
        "setup": "server and load generator on the same machine (127.0.0.1); "
        "uvicorn (uvloop, httptools), one process; an asyncio-streams client, one process",
        "command": command(),
        **environment(),
    }
    md = [
        "# Load test: `elcrec serve`, POST /recommend",
        "",
        f"Command: `{payload['command']}`  ",
        f"Machine: {payload['machine']}; {payload['date']}. {payload['setup']}.",
        "",
        "| requests | errors | concurrency | requests/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
        f"| {payload['requests']} | {payload['errors']} | {args.concurrency} | "
        f"{payload['rps']:.0f} | {payload['p50_ms']:.1f} | {payload['p95_ms']:.1f} | "
        f"{payload['p99_ms']:.1f} |",
        "",
    ]
    write_results("serve_load", payload, "\n".join(md))
    print(md[-2])


if __name__ == "__main__":
    main()
