"""Run wrk against loopback URLs and parse its figures."""

import re
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
# What wrk may take besides its run: a script's init (reading ~300 MB of signed events per thread
# takes tens of seconds on a busy machine) and its wind-down.
SETUP_SECONDS = 120


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


def _found(pattern: str, text: str) -> re.Match[str]:
    """The first match of `pattern` in wrk's output; wrk printing none is an error."""
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"wrk's output has no {pattern!r}: {text[-500:]}")
    return match


def _ms(text: str) -> float:
    value, unit = _found(r"^([\d.]+)(us|ms|s)$", text).groups()
    return float(value) * _UNITS[unit]


def run_wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    threads: int = 2,
    headers: dict[str, str] | None = None,
    script: list[str] | None = None,
) -> WrkResult:
    """`wrk --latency` for `seconds` at `connections`; only loopback URLs are allowed."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("benchmarks target loopback only")
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    # [path, arg, ...] → wrk -s path url -- arg ...
    args += ["-s", script[0], url, "--", *script[1:]] if script else [url]
    out = subprocess.run(
        args, capture_output=True, text=True, check=True, timeout=seconds + SETUP_SECONDS
    ).stdout
    rps = float(_found(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(_found(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(_found(r"\s99%\s+(\S+)", out).group(1))
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return WrkResult(rps, p50, p99, non_2xx, errors)


CONNECTIONS = 64


def measure(url: str, seconds: int, headers: dict[str, str] | None = None) -> WrkResult:
    run_wrk(url, connections=CONNECTIONS, seconds=2, headers=headers)  # warm-up
    return run_wrk(url, connections=CONNECTIONS, seconds=seconds, headers=headers)
