"""``chat-bench`` / ``python -m bench``: run a scenario against our server and ngircd, side by side.

Every scenario starts each server itself on a private loopback port, runs the
same generator against it, stops it, and prints one Markdown table per
scenario with both servers and their ratio. Results are also saved as JSON
under ``bench/results/`` and can be plotted with ``chat-bench plot``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import scenarios
from .build import build
from .plot import PLOTS_DIR, plot_ramps, plot_soak
from .report import (
    Report,
    idle_table,
    joins_table,
    machine_info,
    machine_table,
    ramp_steps_table,
    ramp_summary,
    save,
    soak_table,
)
from .servers import check_loopback, run_server

log = logging.getLogger("bench")

SERVERS = (
    "ours", "ours-before", "ours-history", "ours-history-before", "ours-durable", "ours-durable-pg", "ours-metrics",
    "ours-redis", "ours-redis2", "ngircd", "gateway", "gateway-before",
)


def _servers(raw: str) -> list[str]:
    names = [s.strip() for s in raw.split(",") if s.strip()]
    for name in names:
        if name not in SERVERS:
            raise argparse.ArgumentTypeError(f"unknown server {name!r} (choose from {', '.join(SERVERS)})")
    return names


def _floats(raw: str) -> tuple[float, ...]:
    return tuple(float(x) for x in raw.split(",") if x.strip())


def _busy_warning() -> None:
    """Other engineers run tests on this machine: say so when the load would disturb the figures."""
    load = os.getloadavg()[0]
    if load > 0.5:
        log.warning("load average is %.2f: other work on this machine will disturb the figures; "
                    "rerun when it is idle, or use --repeat", load)


def _on_each_server(args: argparse.Namespace, run: Callable[[Any], Report]) -> list[Report]:
    """Run ``run(server)`` on every server asked for, each freshly started, ``--repeat`` times interleaved."""
    reports: list[Report] = []
    for rep in range(args.repeat):
        for i, kind in enumerate(args.servers):
            _busy_warning()
            load = os.getloadavg()
            port = args.port + i if args.port else 0
            with run_server(kind, port, args.host, scenarios.SERVER_CPUS, args.ours_path) as server:
                if args.profile and server.name != "ngircd":
                    out = Path(args.profile)
                    with profiled(server.pid, out.with_name(f"{out.stem}-{server.name}{out.suffix}")):
                        report = run(server)
                else:
                    report = run(server)
            report["run"] = rep + 1
            report["loadavg_before"] = load
            report["loadavg_after"] = os.getloadavg()
            reports.append(report)
            time.sleep(1.0)  # let TIME_WAIT and the other side's buffers settle
    return reports


@contextmanager
def profiled(pid: int, out: Path) -> Iterator[None]:
    """Sample the server with py-spy while the scenario runs (``--profile``).

    py-spy reads the interpreter's stacks from outside (ptrace, no code change in
    the server) at 250 Hz; ``--format raw`` gives collapsed stacks that
    ``chat-bench profile`` summarises and flamegraph tools draw.
    """
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = "speedscope" if out.suffix == ".json" else ("flamegraph" if out.suffix == ".svg" else "raw")
    cmd = [spy, "record", "--pid", str(pid), "--rate", "250", "--nonblocking", "--format", fmt, "-o", str(out)]
    log.info("profiling the server: %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
        log.info("profile written to %s", out)


def _median_runs(reports: list[Report], key: str = "best_at_target") -> list[Report]:
    """With --repeat, the run whose best rate is the median of that server's runs."""
    out: list[Report] = []
    for name in dict.fromkeys(r["server"] for r in reports):
        runs = [r for r in reports if r["server"] == name]
        runs.sort(key=lambda r: (r.get(key) or {}).get("deliveries_per_s", 0.0))
        out.append(runs[(len(runs) - 1) // 2])
    return out


def _finish(args: argparse.Namespace, name: str, reports: list[Report], text: str) -> None:
    payload = {"scenario": name, "argv": sys.argv, "machine": machine_info(), "reports": reports}
    path = save(name, payload, Path(args.json) if args.json else None)
    print(text)
    print(f"\n(results saved to {path})")


# ---------------------------------------------------------------- commands


def cmd_build(args: argparse.Namespace) -> int:
    print(build(force=True))
    return 0


def _ramp_config(args: argparse.Namespace, mode: str) -> scenarios.RampConfig:
    return scenarios.RampConfig(
        users=args.users, senders=args.senders, probes=args.probes, msg_size=args.msg_size, mode=mode,
        start=args.start, factor=args.factor, max_offered=args.max_offered, step_secs=args.step_secs,
        max_steps=args.max_steps, p99_limit_ms=args.p99_limit, target_p99_ms=args.target_p99,
        join_concurrency=args.concurrency, rates=args.rates,
    )


def _ramp_text(reports: list[Report], repeat: int) -> str:
    summary = ramp_summary(_median_runs(reports) if repeat > 1 else reports)
    if repeat > 1:
        per_run = ", ".join(
            f"{r['server']} run {r['run']}: {(r.get('best_at_target') or {}).get('deliveries_per_s', 0):,.0f}"
            for r in reports
        )
        summary += f"\n\nMedian of {repeat} interleaved runs per server; best rates at the tighter bound: {per_run}"
    return summary + "\n\n" + "\n\n".join(ramp_steps_table(r) for r in reports)


def cmd_ramp(args: argparse.Namespace, mode: str) -> int:
    cfg = _ramp_config(args, mode)
    reports = _on_each_server(args, lambda server: scenarios.ramp(server, cfg))
    name = args.name or f"{args.command}-{cfg.users}"
    if not args.no_plot:
        plot_ramps(_median_runs(reports) if args.repeat > 1 else reports, name, Path(args.plots))
    _finish(args, name, reports, _ramp_text(reports, args.repeat))
    return 0 if all("error" not in r for r in reports) else 1


def cmd_joins(args: argparse.Namespace) -> int:
    def run(server: Any) -> Report:
        timeout = args.timeout if server.name == "hanchat" else args.other_timeout
        return scenarios.join_storm(server, args.users, args.concurrency, timeout)

    reports = _on_each_server(args, run)
    _finish(args, args.name or f"joins-{args.users}", reports, joins_table(reports))
    return 0


def cmd_idle(args: argparse.Namespace) -> int:
    reports = _on_each_server(
        args, lambda server: scenarios.idle(server, args.users, args.concurrency, args.hold, args.timeout)
    )
    _finish(args, args.name or f"idle-{args.users}", reports, idle_table(reports))
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    cfg = scenarios.SoakConfig(secs=args.secs, tick=args.tick, users=args.users, senders=args.senders,
                               rate=args.rate, whisper_rate=args.whisper_rate, whisper_every=args.whisper_every,
                               churn_rate=args.churn)
    reports = _on_each_server(args, lambda server: scenarios.soak(server, cfg))
    name = args.name or f"soak-{int(cfg.secs)}s"
    if not args.no_plot:
        for r in reports:
            plot_soak(r, f"{name}-{r['server']}", Path(args.plots))
    _finish(args, name, reports, "\n\n".join(soak_table(r) for r in reports))
    bad = any(r.get("totals", {}).get("lost", 1) or r.get("totals", {}).get("dropped_users", 1) for r in reports)
    return 1 if bad else 0


def cmd_plot(args: argparse.Namespace) -> int:
    for raw in args.files:
        payload = json.loads(Path(raw).read_text())
        reports = payload["reports"]
        name = args.name or payload["scenario"]
        if reports and "steps" in reports[0]:
            plot_ramps(_median_runs(reports) if len(reports) > len({r["server"] for r in reports}) else reports,
                       name, Path(args.plots))
        for r in reports:
            if r.get("scenario") == "soak":
                plot_soak(r, f"{name}-{r['server']}", Path(args.plots))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print the tables of saved results again (what BENCHMARKS.md quotes)."""
    for raw in args.files:
        payload = json.loads(Path(raw).read_text())
        reports = payload["reports"]
        if not reports:
            continue
        print(f"<!-- {Path(raw).name}: {' '.join(payload.get('argv', []))} -->")
        kind = reports[0].get("scenario", "")
        if "steps" in reports[0]:
            repeat = max(r.get("run", 1) for r in reports)
            print(_ramp_text(reports, repeat) if args.steps else ramp_summary(
                _median_runs(reports) if repeat > 1 else reports))
        elif kind == "join-storm":
            print(joins_table(reports))
        elif kind == "idle":
            print(idle_table(reports))
        elif kind == "soak":
            print("\n\n".join(soak_table(r) for r in reports))
        print()
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """Summarise py-spy raw (collapsed) stacks: where the server's time goes, self and inclusive."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in Path(args.file).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + n
    print(f"{total} samples\n\nself time:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{100 * n / total:6.1f}%  {frame}")
    print("\ninclusive time:")
    for frame, n in sorted(incl.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"{100 * n / total:6.1f}%  {frame}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """A room with ``--messages`` stored messages on each database asked for: join, page and search timings."""
    from . import history

    reports = []
    for rep in range(args.repeat):
        for kind in args.databases:
            _busy_warning()
            report = history.run(kind, args.messages, args.joins, args.pages, args.searches, args.keep,
                                 scenarios.SERVER_CPUS, scenarios.AGENT_CPUS)
            report["run"] = rep + 1
            reports.append(report)
    _finish(args, args.name or f"history-{args.messages}", reports, history.table(reports))
    return 0


def cmd_crash(args: argparse.Namespace) -> int:
    """kill -9 under fan-out, restart, count what clients received that the history lacks (must be 0)."""
    from . import crash

    reports = []
    for kind in args.databases:
        _busy_warning()
        reports.append(crash.run(kind, args.runs, args.users, args.rate, args.senders, scenarios.SERVER_CPUS,
                                 scenarios.AGENT_CPUS))
    _finish(args, args.name or f"crash-{args.users}", reports, crash.table(reports))
    return 0 if all(r["missing"] == 0 for rep in reports for r in rep["runs"]) else 1


def cmd_machine(args: argparse.Namespace) -> int:
    print(machine_table(machine_info()))
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--servers", type=_servers, default=None,
                        help="comma-separated: ours, ours-before (--ours-path's copy), ours-history (history and "
                             "resume on), ours-history-before (--ours-path's copy, history and resume on), "
                             "ours-durable (ours-history with its SQLite store), ours-durable-pg (the same on a "
                             "private PostgreSQL cluster, its CPU counted with the server's), ours-metrics (metrics "
                             "on, scraped every second), ours-redis, ours-redis2, "
                             "ngircd, gateway (ours behind the web gateway), gateway-before; each started privately, "
                             "in this order (default: ours,ngircd; for the gateway command ours,gateway)")
    common.add_argument("--host", default="127.0.0.1", help="loopback address the servers listen on")
    common.add_argument("--port", type=int, default=37100,
                        help="port of the first server; the next ones use the following ports (0: any free ones)")
    common.add_argument("--repeat", type=int, default=1, help="runs per server, interleaved (noise: median is kept)")
    common.add_argument("--no-pin", action="store_true",
                        help="do not pin the server to CPU 0 and the generator to CPU 1")
    common.add_argument("--ours-path", default=None,
                        help="a checkout of another commit, run by the servers ours-before and gateway-before "
                             "(before/after figures in one run)")
    common.add_argument("--msg-size", type=int, default=100, help="message payload bytes")
    common.add_argument("--json", default=None, help="write the results here (default bench/results/NAME-TIME.json)")
    common.add_argument("--name", default=None, help="name of the results and plot files")
    common.add_argument("--plots", default=str(PLOTS_DIR), help="directory for PNG plots")
    common.add_argument("--no-plot", action="store_true", help="do not write plots")
    common.add_argument("--profile", default=None,
                        help="sample our server with py-spy into this file (.txt raw stacks, .svg, .json speedscope)")
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")

    parser = argparse.ArgumentParser(prog="chat-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("build", help="compile the C load generator (done automatically when needed)")
    sub.add_parser("machine", help="print the machine description used in BENCHMARKS.md")

    ramps: tuple[tuple[str, str, dict[str, Any], str], ...] = (
        ("fanout", "broadcast", dict(users=1000, senders=10, start=25_000.0),
         "broadcast ramp: raise the offered rate until p99 passes the bound or anything is lost"),
        ("whisper", "whisper", dict(users=1000, senders=100, start=10_000.0),
         "whisper ramp: one recipient per message, otherwise as fanout"),
        ("gateway", "broadcast", dict(users=200, senders=10, start=10_000.0),
         "broadcast ramp through the web gateway (WebSocket users) against direct TCP users, same rates"),
    )
    for command, mode, defaults, help_text in ramps:
        p = sub.add_parser(command, parents=[common], help=help_text)
        p.set_defaults(mode=mode)
        p.add_argument("--users", type=int, default=defaults["users"])
        p.add_argument("--senders", type=int, default=defaults["senders"])
        p.add_argument("--probes", type=int, default=16, help="receivers that parse every line for latency")
        p.add_argument("--start", type=float, default=defaults["start"], help="first offered deliveries/s")
        p.add_argument("--factor", type=float, default=1.25, help="offered rate multiplier per step")
        p.add_argument("--max-offered", type=float, default=50e6, help="stop the ramp past this")
        p.add_argument("--max-steps", type=int, default=40)
        p.add_argument("--step-secs", type=float, default=5.0, help="seconds of paced sending per step")
        p.add_argument("--p99-limit", type=float, default=100.0, help="the ramp stops past this p99 (ms)")
        p.add_argument("--target-p99", type=float, default=50.0, help="also report the best step within this p99")
        p.add_argument("--rates", type=_floats, default=(), help="fixed offered deliveries/s list instead of a ramp")
        p.add_argument("--concurrency", type=int, default=100, help="joins in flight")

    p = sub.add_parser("joins", parents=[common], help="join storm: N users join one room")
    p.add_argument("--users", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=100, help="joins in flight")
    p.add_argument("--timeout", type=float, default=120.0, help="give up on our server after this many seconds")
    p.add_argument("--other-timeout", type=float, default=900.0,
                   help="give up on the other servers after this many seconds (ngircd needs minutes)")

    p = sub.add_parser("idle", parents=[common], help="hold N joined idle connections: server RSS per connection")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--hold", type=float, default=5.0, help="seconds held before measuring")
    p.add_argument("--timeout", type=float, default=900.0, help="longest time for the joins")

    p = sub.add_parser("soak", parents=[common], help="mixed traffic with churn; server RSS and fds over time")
    p.add_argument("--secs", type=float, default=3600.0)
    p.add_argument("--tick", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--users", type=int, default=200)
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=100.0, help="broadcast messages a second")
    p.add_argument("--whisper-rate", type=float, default=2000.0, help="whisper messages a second on whisper ticks")
    p.add_argument("--whisper-every", type=int, default=4, help="every Nth tick is whispers (0: never)")
    p.add_argument("--churn", type=float, default=20.0, help="connect/join/leave cycles a second")

    p = sub.add_parser("history", parents=[common],
                       help="a room with a million stored messages: join, page back and search timings, per database")
    p.add_argument("--databases", type=lambda raw: [x.strip() for x in raw.split(",") if x.strip()],
                   default=["sqlite", "postgresql"], help="sqlite, postgresql (a private cluster), comma-separated")
    p.add_argument("--messages", type=int, default=1_000_000, help="stored messages in the room")
    p.add_argument("--joins", type=int, default=100, help="fresh joins timed (each then pages back once)")
    p.add_argument("--pages", type=int, default=100, help="deeper pages timed, each from the previous cursor")
    p.add_argument("--searches", type=int, default=30, help="times each search query is timed")
    p.add_argument("--keep", default=None, help="SQLite: fill (or reuse) the database in this directory")

    p = sub.add_parser("crash", parents=[common],
                       help="kill -9 the server under fan-out, restart it: messages received but not stored (0)")
    p.add_argument("--databases", type=lambda raw: [x.strip() for x in raw.split(",") if x.strip()],
                   default=["sqlite"], help="sqlite, postgresql (a private cluster), comma-separated")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--users", type=int, default=1000, help="users in the room, the observer included")
    p.add_argument("--senders", type=int, default=10)
    p.add_argument("--rate", type=float, default=1e6, help="offered deliveries a second during the kill")

    p = sub.add_parser("profile", help="summarise a py-spy raw profile written with --profile FILE.txt")
    p.add_argument("file")
    p.add_argument("--top", type=int, default=25)

    p = sub.add_parser("show", help="print the tables of saved results (bench/results/*.json)")
    p.add_argument("files", nargs="+")
    p.add_argument("--steps", action="store_true", help="ramps: every step, not only the summary")

    p = sub.add_parser("plot", help="plot saved results")
    p.add_argument("files", nargs="+")
    p.add_argument("--name", default=None)
    p.add_argument("--plots", default=str(PLOTS_DIR))
    p.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if hasattr(args, "host"):
        check_loopback(args.host)
    scenarios.set_pinning(not getattr(args, "no_pin", False))
    if hasattr(args, "servers") and args.servers is None:
        args.servers = ["ours", "gateway"] if args.command == "gateway" else ["ours", "ngircd"]
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "build": cmd_build,
        "machine": cmd_machine,
        "fanout": lambda a: cmd_ramp(a, "broadcast"),
        "whisper": lambda a: cmd_ramp(a, "whisper"),
        "gateway": lambda a: cmd_ramp(a, "broadcast"),
        "joins": cmd_joins,
        "idle": cmd_idle,
        "soak": cmd_soak,
        "plot": cmd_plot,
        "show": cmd_show,
        "profile": cmd_profile,
        "history": cmd_history,
        "crash": cmd_crash,
    }
    sys.exit(commands[args.command](args))


if __name__ == "__main__":
    main()
