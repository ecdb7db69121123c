"""The benchmark's scenarios: fan-out ramp, whisper ramp, join storm, idle memory, soak.

Each scenario takes a running server (``ServerHandle``) and returns a plain
JSON-able dict, so results can be saved, compared between servers, plotted and
pasted into BENCHMARKS.md by the same code.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from .agent import Agent, Result, StepSpec
from .servers import ServerHandle

log = logging.getLogger("bench")

Report = dict[str, Any]

# The agent runs on its own CPU, the server on the other: the servers under test
# are single-threaded, so this gives each the same core and keeps the
# generator from competing with it. Both fall back to unpinned on 1 CPU.
SERVER_CPUS: set[int] | None = {0}
AGENT_CPUS: set[int] | None = {1}


def set_pinning(enabled: bool) -> None:
    """Pin the server to CPU 0 and the generator to CPU 1 (the default), or let the scheduler place them."""
    global SERVER_CPUS, AGENT_CPUS
    if enabled and (os.cpu_count() or 1) >= 2:
        SERVER_CPUS, AGENT_CPUS = {0}, {1}
    else:
        SERVER_CPUS = AGENT_CPUS = None


def _agent(server: ServerHandle, prefix: str, msg_size: int = 100, max_secs: float = 7200.0) -> Agent:
    port2 = int(server.extra["port2"]) if "port2" in server.extra else None
    return Agent(server.port, server.proto, prefix=prefix, msg_size=msg_size, host=server.host,
                 max_secs=max_secs, cpus=AGENT_CPUS, port2=port2)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all CPUs), from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / (os.sysconf("SC_CLK_TCK") or 100)


def _measured_step(agent: Agent, server: ServerHandle, spec: StepSpec) -> Result:
    """One step, with the server's CPU use and memory alongside the agent's figures.

    ``other_cpu`` is what the rest of the machine used meanwhile (other people's
    tests, a browser, the kernel's own softirq threads): cores busy minus the
    server's and the generator's share. Near 0 means the step ran undisturbed.
    """
    cpu0, busy0, t0 = server.cpu_seconds(), machine_busy_seconds(), time.monotonic()
    times0 = server.cpu_times()
    commits0 = server.store_commits() if server.store_commits else None
    result = agent.step(spec)
    wall = time.monotonic() - t0
    if commits0 is not None and server.store_commits and wall > 0:
        # the database's commits a second (PostgreSQL counts its own; a few are the server's reads)
        result["store_commits_per_s"] = round((server.store_commits() - commits0) / wall, 1)
    result["server_cpu"] = round((server.cpu_seconds() - cpu0) / wall, 3) if wall > 0 else 0.0
    if wall > 0 and server.alive():
        # User and kernel time per process: where a relay's CPU goes (BENCHMARKS.md, "Gateway").
        result["cpu_split"] = {
            name: [round((user - times0[name][0]) / wall, 3), round((system - times0[name][1]) / wall, 3)]
            for name, (user, system) in server.cpu_times().items() if name in times0
        }
        log.debug("cpu user/system per second: %s", result["cpu_split"])
    busy = (machine_busy_seconds() - busy0) / wall if wall > 0 else 0.0
    result["other_cpu"] = round(max(0.0, busy - result["server_cpu"] - result["gen_cpu"]), 3)
    result["server_rss_kib"] = server.rss_kib() if server.alive() else None
    return result


def step_passed(step: Result, p99_limit_ms: float) -> bool:
    """Sustained: everything delivered, nobody dropped, the senders never blocked, p99 within the bound."""
    return bool(
        step["lost"] == 0
        and step["dropped_users"] == 0
        and step["skipped"] == 0
        and step["samples"] > 0
        and 0 <= step["p99_ms"] <= p99_limit_ms
    )


def best_step(steps: list[Result], p99_limit_ms: float) -> Result | None:
    passing = [s for s in steps if step_passed(s, p99_limit_ms)]
    return max(passing, key=lambda s: s["deliveries_per_s"]) if passing else None


# ---------------------------------------------------------------- ramps


@dataclass
class RampConfig:
    """A ramp of offered load (deliveries a second) over one set of joined users."""

    users: int = 1000
    senders: int = 10
    probes: int = 16
    msg_size: int = 100
    mode: str = "broadcast"  # or "whisper"
    start: float = 25_000.0  # offered deliveries/s of the first step
    factor: float = 1.25
    max_offered: float = 5_000_000.0
    step_secs: float = 5.0
    max_steps: int = 40
    p99_limit_ms: float = 100.0  # the ramp stops past this (or at any loss)
    target_p99_ms: float = 50.0  # also report the best step within this tighter bound
    join_concurrency: int = 100
    join_timeout: float = 900.0
    retries: int = 1  # a step failing on latency alone is repeated this often before the ramp stops
    rates: tuple[float, ...] = ()  # fixed offered deliveries/s instead of a ramp

    def message_rate(self, offered: float, joined: int) -> float:
        """Messages a second that make ``offered`` deliveries a second."""
        if self.mode == "whisper":
            return offered
        return offered / max(1, joined - 1)


def ramp(server: ServerHandle, cfg: RampConfig) -> Report:
    """Join ``cfg.users``, then raise the offered rate until p99 passes the bound or anything is lost."""
    report: Report = {"scenario": f"{cfg.mode}-ramp", "server": server.name, "config": asdict(cfg),
                      "server_info": dict(server.extra), "steps": []}
    with _agent(server, "u", cfg.msg_size) as agent:
        rss0 = server.rss_kib()
        joined = agent.connect(cfg.users, cfg.join_concurrency, cfg.join_timeout, wait_notices=True,
                               accept_window=server.accept_window(cfg.join_concurrency))
        report["join"] = joined
        log.info("%s: %d users joined in %.2f s", server.name, joined["joined"], joined["join_secs"])
        if joined["joined"] < cfg.users:
            report["error"] = f"only {joined['joined']} of {cfg.users} users joined"
            return report
        agent.settle(500, 60.0)
        report["rss_kib_before_traffic"] = server.rss_kib()
        report["rss_kib_empty"] = rss0
        if server.store_bytes:
            report["store_bytes_before"] = server.store_bytes()
        offered_list = list(cfg.rates) if cfg.rates else []
        offered = cfg.rates[0] if cfg.rates else cfg.start
        failures = 0
        for i in range(cfg.max_steps if not cfg.rates else len(cfg.rates)):
            if cfg.rates:
                offered = offered_list[i]
            rate = cfg.message_rate(offered, joined["users"])
            spec = StepSpec(mode=cfg.mode, rate=rate, secs=cfg.step_secs, senders=cfg.senders,
                            probes=cfg.probes, parse_all=cfg.mode == "whisper", drain_secs=10.0)
            step = _measured_step(agent, server, spec)
            step["offered_deliveries_per_s"] = round(offered, 1)
            step["passed"] = step_passed(step, cfg.p99_limit_ms)
            report["steps"].append(step)
            log.info(
                "%s %s: offered %9.0f/s delivered %9.0f/s p50 %7.2f ms p99 %7.2f ms lost %d dropped %d "
                "server cpu %.2f gen cpu %.2f other cpu %.2f%s",
                server.name, cfg.mode, offered, step["deliveries_per_s"], step["p50_ms"], step["p99_ms"],
                step["lost"], step["dropped_users"], step["server_cpu"], step["gen_cpu"], step["other_cpu"],
                "" if step["passed"] else "  <- over the bound",
            )
            if not server.alive():
                report["error"] = "server died"
                break
            if cfg.rates:
                continue
            if not step["passed"]:
                lossless = step["lost"] == 0 and step["dropped_users"] == 0
                failures += 1
                if not lossless or failures > cfg.retries:
                    break
                continue  # latency only: measure the same rate again before giving up (noise)
            failures = 0
            offered *= cfg.factor
            if offered > cfg.max_offered:
                break
        if server.store_bytes and server.alive():
            # what the messages of the run take on disk (the durable kinds): bytes per message stored
            time.sleep(1.0)  # the last batch committed
            after = server.store_bytes()
            sent = sum(s["sent"] for s in report["steps"])
            report["store_bytes_after"] = after
            report["messages_sent"] = sent
            if sent:
                report["store_bytes_per_message"] = round((after - report.get("store_bytes_before", 0)) / sent, 1)
            log.info("%s: the store grew %d bytes for %d messages", server.name,
                     after - report.get("store_bytes_before", 0), sent)
    report["best"] = best_step(report["steps"], cfg.p99_limit_ms)
    report["best_at_target"] = best_step(report["steps"], cfg.target_p99_ms)
    report["max_gen_cpu"] = max((s["gen_cpu"] for s in report["steps"]), default=0.0)
    return report


# ---------------------------------------------------------------- joins and memory


def join_storm(server: ServerHandle, users: int = 5000, concurrency: int = 100, timeout: float = 120.0) -> Report:
    """``users`` join one room, ``concurrency`` at a time: how long until all are in and all notices arrived."""
    report: Report = {"scenario": "join-storm", "server": server.name, "server_info": dict(server.extra),
                      "config": {"users": users, "concurrency": concurrency, "timeout": timeout}}
    with _agent(server, "j") as agent:
        cpu0 = server.cpu_seconds()
        result = agent.connect(users, concurrency, timeout, wait_notices=True,
                               accept_window=server.accept_window(concurrency))
        report["result"] = result
        report["server_cpu_secs"] = round(server.cpu_seconds() - cpu0, 2)
        report["rss_kib"] = server.rss_kib()
        log.info("%s: %d/%d joined in %.2f s, all notices in %.2f s", server.name, result["joined"], users,
                 result["join_secs"], result["notices_secs"])
        agent.close_all()
    return report


def idle(server: ServerHandle, users: int = 10_000, concurrency: int = 200, hold: float = 5.0,
         timeout: float = 900.0) -> Report:
    """Hold ``users`` joined, idle connections: the server's RSS per connection."""
    report: Report = {"scenario": "idle", "server": server.name, "server_info": dict(server.extra),
                      "config": {"users": users, "concurrency": concurrency, "hold": hold}}
    before = server.status()
    fds0 = server.open_fds()
    with _agent(server, "i") as agent:
        joined = agent.connect(users, concurrency, timeout, wait_notices=False,
                               accept_window=server.accept_window(concurrency))
        report["join"] = joined
        agent.settle(1000, 300.0)
        agent.idle(hold)
        after = server.status()
        n = joined["joined"]
        report.update({
            "joined": n,
            "rss_kib_before": before["VmRSS"],
            "rss_kib_after": after["VmRSS"],
            "hwm_kib": after.get("VmHWM"),
            "fds_before": fds0,
            "fds_after": server.open_fds(),
            "rss_bytes_per_conn": round((after["VmRSS"] - before["VmRSS"]) * 1024 / n) if n else None,
            "total_rss_bytes_per_conn": round(after["VmRSS"] * 1024 / n) if n else None,
        })
        log.info("%s: %d idle users, RSS %d -> %d KiB: %s bytes per connection", server.name, n,
                 before["VmRSS"], after["VmRSS"], report["rss_bytes_per_conn"])
        agent.close_all()
    return report


# ---------------------------------------------------------------- soak


@dataclass
class SoakConfig:
    """Mixed traffic with churn for a long time; the server's RSS and descriptors sampled each tick."""

    secs: float = 3600.0
    tick: float = 10.0
    users: int = 200
    senders: int = 10
    rate: float = 100.0  # broadcast messages a second
    whisper_rate: float = 2000.0  # whisper messages a second, on every Nth tick
    whisper_every: int = 4  # every Nth tick is whisper traffic instead of broadcast
    churn_rate: float = 20.0  # connect/join/leave cycles a second (a third quit, a third drop, a third never join)
    probes: int = 16


def soak(server: ServerHandle, cfg: SoakConfig) -> Report:
    report: Report = {"scenario": "soak", "server": server.name, "server_info": dict(server.extra),
                      "config": asdict(cfg), "samples": []}
    fds_empty = server.open_fds()
    rss_empty = server.rss_kib()
    with _agent(server, "s", max_secs=cfg.secs + 600) as agent:
        joined = agent.connect(cfg.users, 100, 300.0, wait_notices=True, accept_window=server.accept_window(100))
        report["join"] = joined
        agent.settle(300, 30.0)
        t0 = time.monotonic()
        n = 0
        totals = {"sent": 0, "expected": 0, "delivered": 0, "lost": 0, "dropped_users": 0,
                  "churn_started": 0, "churn_done": 0, "churn_failed": 0}
        while time.monotonic() - t0 < cfg.secs:
            whisper = cfg.whisper_every > 0 and n % cfg.whisper_every == cfg.whisper_every - 1
            spec = StepSpec(mode="whisper" if whisper else "broadcast",
                            rate=cfg.whisper_rate if whisper else cfg.rate,
                            secs=min(cfg.tick, max(0.2, cfg.secs - (time.monotonic() - t0))),
                            senders=cfg.senders, probes=cfg.probes, parse_all=True,
                            churn_rate=cfg.churn_rate, drain_secs=5.0, quiet_ms=500)
            step = _measured_step(agent, server, spec)
            for key in totals:
                totals[key] += step[key]
            sample = {
                "t": round(time.monotonic() - t0, 2), "mode": step["mode"], "rss_kib": server.rss_kib(),
                "fds": server.open_fds(), "p99_ms": step["p99_ms"], "deliveries_per_s": step["deliveries_per_s"],
                "lost": step["lost"], "server_cpu": step["server_cpu"], "other_cpu": step["other_cpu"],
            }
            report["samples"].append(sample)
            log.info("soak %s t=%6.0fs rss %d KiB fds %d p99 %.2f ms lost %d churn %d/%d other cpu %.2f", server.name,
                     sample["t"], sample["rss_kib"], sample["fds"], sample["p99_ms"], sample["lost"],
                     step["churn_done"], step["churn_started"], step["other_cpu"])
            n += 1
        report["totals"] = totals
        agent.close_all()
    # every connection closed: descriptors should come back to the empty server's
    deadline = time.monotonic() + 10.0
    while server.open_fds() > fds_empty and time.monotonic() < deadline:
        time.sleep(0.1)
    report["fds_empty"] = fds_empty
    report["fds_after_close"] = server.open_fds()
    report["rss_kib_empty"] = rss_empty
    report["rss_kib_after_close"] = server.rss_kib()
    samples = report["samples"]
    if samples:
        quarter = max(1, len(samples) // 4)
        first = sum(s["rss_kib"] for s in samples[:quarter]) / quarter
        last = sum(s["rss_kib"] for s in samples[-quarter:]) / quarter
        report["rss_growth_kib"] = round(last - first, 1)
        report["fds_min"] = min(s["fds"] for s in samples)
        report["fds_max"] = max(s["fds"] for s in samples)
    return report
