"""Serve fal.ai, the Gemini API, Vertex AI, AI/ML API and Oxen.ai on loopback: every
provider, offline.

python -m emulator [--host 127.0.0.1] [--port 8765] [--latency SECONDS]
                   [--fail KIND[@STAGE]] [--fail-times N] [--hang S] [--retry-after S]
                   [--vertex-key PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from emulator.base import KINDS, NO_CREDIT_KEY, REJECTED_KEY, STAGES
from emulator.server import Emulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description=(
            "Run the provider emulator: all five hosted-provider protocols on one port, with "
            "real MP4s, queue positions, and failures on demand ([fail:KIND] in a prompt)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--latency",
        type=float,
        default=20.0,
        help="seconds each clip takes, queue wait included (default 20)",
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="KIND[@STAGE]",
        help=f"fail every job: {', '.join(KINDS)}; stages {', '.join(STAGES)} (repeatable)",
    )
    parser.add_argument(
        "--fail-times",
        type=int,
        default=1,
        help="how often a transient failure repeats per job before it recovers (0 = always)",
    )
    parser.add_argument(
        "--hang", type=float, default=60.0, help="seconds a `timeout` failure hangs"
    )
    parser.add_argument(
        "--retry-after", type=int, default=7, help="Retry-After of a `rate_limit` failure"
    )
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="also write the settings that point Studio here (and a key for each provider) "
        "to PATH, one NAME=value a line, for a shell or a test to read",
    )
    parser.add_argument(
        "--vertex-key",
        metavar="PATH",
        help="where to write Vertex AI's service-account key (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    try:
        emulator = Emulator(
            latency=args.latency,
            fail=args.fail,
            fail_times=args.fail_times,
            hang_seconds=args.hang,
            retry_after=args.retry_after,
        )
    except ValueError as exc:
        sys.exit(str(exc))
    if args.vertex_key:
        emulator.vertex.key_path = Path(args.vertex_key).resolve()
    origin = f"http://{args.host}:{args.port}"
    # Flushed at once: written to a file (a test's log), it would wait in the buffer until exit.
    say(f"Provider emulator on {origin} (Ctrl-C to stop). Point Studio at it:")
    for name, value in emulator.settings(origin).items():
        say(f"  {name}={value}")
    if args.env_file:
        write_env(args.env_file, emulator, origin)
    keys = ", ".join(provider.key_setting for provider in emulator.providers.values())
    say(
        f"  and {keys} set to any non-empty value.\n"
        f'Keys "{REJECTED_KEY}" and "{NO_CREDIT_KEY}" are refused (for Vertex AI, service '
        "accounts of those names). Put [fail:KIND] or [fail:KIND@STAGE] in a prompt to fail "
        "one job."
    )
    try:
        emulator.serve_forever(args.host, args.port)
    except OSError as exc:
        sys.exit(f"Cannot listen on {args.host}:{args.port}: {exc}")
    except KeyboardInterrupt:
        say("Stopped.")


def write_env(path: str, emulator: Emulator, origin: str) -> None:
    """The settings, and "emulated-key" as every provider's key, written whole or not at all."""
    lines = [f"{name}={value}" for name, value in emulator.settings(origin).items()]
    lines += [f"{p.key_setting}=emulated-key" for p in emulator.providers.values()]
    partial = f"{path}.partial"
    with open(partial, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(partial, path)


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    main()
