"""A small wrk-like load generator, for machines without wrk (bench_tokens.py runs it in a
process of its own): C keep-alive HTTP/1.1 connections on asyncio streams, each sending POSTs
back to back for D seconds; prints JSON figures (rps, p50_ms, p99_ms, requests, errors).

    python bench/loadgen.py URL HEADERS_JSON BODY_FORMAT SECONDS CONNECTIONS

BODY_FORMAT is a %-format taking (connection number, request number), so that each request
can carry a new identity.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def connection(n: int, url, headers, body_format, deadline, latencies, errors) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    count = 0
    try:
        while time.perf_counter() < deadline:
            count += 1
            body = (body_format % (n, count)).encode()
            request = (
                f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.split(b" ")[1].startswith(b"2"):
                errors.append(status_line.decode("latin-1").strip())
    except (OSError, asyncio.IncompleteReadError, IndexError) as exc:
        errors.append(repr(exc))
    finally:
        writer.close()


async def main(url: str, headers: dict, body_format: str, seconds: float, conns: int) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(
        *[
            connection(n, url, headers, body_format, deadline, latencies, errors)
            for n in range(conns)
        ]
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * q))]

    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:3],
    }


if __name__ == "__main__":
    url, headers, body_format, seconds, conns = sys.argv[1:6]
    figures = asyncio.run(main(url, json.loads(headers), body_format, float(seconds), int(conns)))
    print(json.dumps(figures))
