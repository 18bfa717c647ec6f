"""Time to first remote audio on a real livekit-server, on loopback.

Parley under uvicorn (one worker, `AppServer`) pointed at a real livekit-server v1.13.5
(`make livekit`; config from scripts/livekit_server.py: 127.0.0.1 only), and headless Chromium
with a fake microphone playing a steady tone (so the first sound is not held back until the
fake device's next beep) and `--allow-loopback-in-peer-connection`.

One listener joins an audio room through Parley's join page and stays. Then, BENCH_MEDIA_JOINS
(20) times, a second guest opens the join page in a fresh browser context, types a name and
clicks Join; the time is from that click (the guest page's clock) to the moment the
listener's AnalyserNode on the new guest's audio track first rises above silence (RMS > 0.01,
sampled every 10 ms, the listener page's clock: the same machine clock). In between lie
Parley's join request and token, the signalling connection, ICE and DTLS on loopback, the
microphone publish and the server forwarding it. The guest leaves before the next join.

Skipped (exit 0, one line) without the livekit-server binary or Chromium. Results in
bench/results/media.json.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, AppServer, env_int, write_results  # noqa: E402

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import livekit_server  # noqa: E402

NAME = "media"
CHROMIUM = "/usr/bin/chromium"
THRESHOLD = 0.01  # RMS: what the page's meter counts as sound


def tone_wav(path: Path, seconds: float = 5.0, rate: int = 48_000) -> Path:
    """A steady 440 Hz tone (amplitude 0.4) for Chromium's fake microphone."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        value = int(0.4 * 32767 * math.sin(2 * math.pi * 440 * n / rate))
        frames += value.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def main() -> int:
    joins = env_int("BENCH_MEDIA_JOINS", 20)
    if livekit_server.binary() is None:
        build = livekit_server.BUILD_COMMAND
        print(f"media: skipped, livekit-server is not built (run `{build}`)")
        return 0
    if not os.path.exists(CHROMIUM):
        print(f"media: skipped, {CHROMIUM} is not installed")
        return 0
    from tests.media.conftest import INSTRUMENT, MEDIA_ARGS

    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-media-"))
    secret = "bench-media-" + os.urandom(16).hex()
    config = livekit_server.ServerConfig(
        api_key="bench",
        api_secret=secret,
        port=livekit_server.free_port(),
        udp_port=livekit_server.free_port(socket.SOCK_DGRAM),
    )
    lk = livekit_server.Server(config, workdir).start()
    try:
        env = {
            "LIVEKIT_URL": lk.ws_url,
            "LIVEKIT_PUBLIC_URL": lk.ws_url,
            "LIVEKIT_API_KEY": "bench",
            "LIVEKIT_API_SECRET": secret,
        }
        with AppServer(livekit_env=env) as server:
            described = server.describe()
            print(
                f"uvicorn {described['uvicorn']} (1 worker), {described['database']}, "
                f"{described['cpus']} CPUs; livekit-server {livekit_server.VERSION} on loopback"
            )
            with httpx.Client(trust_env=False, timeout=10) as client:
                response = client.post(
                    f"{server.base_url}/api/v1/rooms",
                    headers={"X-API-Key": server.api_key},
                    json={"name": "Bench media", "media_type": "audio"},
                )
                response.raise_for_status()
                room_id = response.json()["room_id"]
            samples, failures = _measure(
                server.base_url, room_id, joins, workdir, INSTRUMENT, MEDIA_ARGS
            )
    finally:
        lk.stop()
    ms = [s * 1000 for s in samples]
    summary: dict[str, Any] = {
        "joins": joins,
        "measured": len(ms),
        "failures": failures,
        "p50_ms": round(percentile(ms, 50), 1) if ms else None,
        "p95_ms": round(percentile(ms, 95), 1) if ms else None,
        "min_ms": round(min(ms), 1) if ms else None,
        "max_ms": round(max(ms), 1) if ms else None,
        "samples_ms": [round(v, 1) for v in ms],
    }
    print(
        f"time to first remote audio (click Join -> other guest hears): {len(ms)}/{joins} "
        f"joins, "
        f"p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms "
        f"(min {summary['min_ms']}, max {summary['max_ms']})"
    )
    path = write_results(NAME, {"environment": described, **summary})
    print(f"results: {path.relative_to(ROOT)}")
    return 0 if ms and not failures else 1


def _measure(
    base_url: str, room_id: str, joins: int, workdir: Path, instrument: str, args: list[str]
) -> tuple[list[float], list[str]]:
    from playwright.sync_api import sync_playwright

    tone = tone_wav(workdir / "tone.wav")
    samples: list[float] = []
    failures: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*args, f"--use-file-for-fake-audio-capture={tone}"],
        )
        listener_ctx = browser.new_context(base_url=base_url)
        listener = listener_ctx.new_page()
        listener.goto(f"/room/{room_id}")
        listener.evaluate(instrument)
        listener.fill("#name-input", "Listener")
        listener.click("#join-button")
        listener.wait_for_function(
            "window.__room && window.__room.state === 'connected'", timeout=30_000
        )
        for n in range(joins):
            context = browser.new_context(base_url=base_url)
            page = context.new_page()
            try:
                page.goto(f"/room/{room_id}")
                page.evaluate(instrument)
                page.wait_for_selector("#join-app[data-state=prejoin]")
                page.fill("#name-input", f"Guest {n + 1}")
                clicked = page.evaluate(
                    "() => { const t = Date.now(); document.getElementById('join-button').click();"
                    " return t; }"
                )
                page.wait_for_function(
                    "window.__room && window.__room.state === 'connected'", timeout=30_000
                )
                identity = page.evaluate("window.__room.localParticipant.identity")
                # INSTRUMENT stamps `first` when the RMS first exceeds THRESHOLD.
                heard = listener.wait_for_function(
                    "id => { const e = window.__audio[id]; return e && e.first ? e.first : 0; }",
                    arg=identity,
                    timeout=30_000,
                    polling=10,
                ).json_value()
                samples.append((heard - clicked) / 1000)
                print(f"  join {n + 1}: {heard - clicked} ms", flush=True)
            except Exception as exc:  # noqa: BLE001 -- count it, go on with the next join
                failures.append(f"join {n + 1}: {exc}".splitlines()[0][:200])
            finally:
                # Leave as a guest does (the Leave button), so the server lets go at once.
                gone = page.evaluate("window.__room ? window.__room.localParticipant.identity : ''")
                if gone:
                    page.click("#ctl-leave")
                    listener.wait_for_function(
                        "id => !window.__room.remoteParticipants.has(id)", arg=gone, timeout=30_000
                    )
                context.close()
            time.sleep(0.2)
        listener_ctx.close()
        browser.close()
    return samples, failures


if __name__ == "__main__":
    sys.exit(main())
