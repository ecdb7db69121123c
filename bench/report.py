"""Tables for the terminal and for BENCHMARKS.md, from the scenario reports.

One formatter per scenario, all Markdown, so what the CLI prints can be pasted
into BENCHMARKS.md as is and a newcomer's rerun compares line by line.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

Report = dict[str, Any]

RESULTS_DIR = Path(__file__).with_name("results")  # *.json gitignored


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits:
        return f"{value:,.{digits}f}"
    return f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "–" if value is None or value < 0 else f"{value:.1f}"


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge the figures: CPU, cores, memory, kernel, versions, load."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        from importlib.metadata import version

        info["uvloop"] = version("uvloop")
    except ImportError:
        info["uvloop"] = None
    except Exception:  # PackageNotFoundError: not installed
        info["uvloop"] = None
    try:
        info["gcc"] = subprocess.run(["gcc", "--version"], capture_output=True, text=True,
                                     timeout=10).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        info["gcc"] = None
    return info


def save(name: str, payload: dict[str, Any], path: Path | None = None) -> Path:
    """Write results as JSON under bench/results/ (or ``path``); return where."""
    if path is None:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=1))
    return path


# ---------------------------------------------------------------- ramps


def ramp_steps_table(report: Report) -> str:
    # Two nodes: also the messages that crossed from one node to the other (the probe's node is not the sender's).
    cross = any(s.get("cross_samples", 0) for s in report["steps"])
    rows = [
        f"#### {report['server']}: {report['scenario']}, {report['config']['users']} users, "
        f"{report['config']['senders']} senders",
        "",
        "| offered/s | delivered/s | p50 ms | p99 ms | p99.9 ms | " + ("cross-node p99 ms | " if cross else "")
        + "lost | server CPU | generator CPU | other CPU | within bound |",
        "|---:|---:|---:|---:|---:|" + ("---:|" if cross else "") + "---:|---:|---:|---:|:---:|",
    ]
    for s in report["steps"]:
        rows.append(
            f"| {_n(s['offered_deliveries_per_s'])} | {_n(s['deliveries_per_s'])} | {_ms(s['p50_ms'])} | "
            f"{_ms(s['p99_ms'])} | {_ms(s['p999_ms'])} | " + (f"{_ms(s.get('cross_p99_ms', -1))} | " if cross else "")
            + f"{s['lost'] + s['dropped_users']} | "
            f"{s['server_cpu']:.2f} | {s['gen_cpu']:.2f} | {_other(s)} | {'yes' if s['passed'] else 'no'} |"
        )
    return "\n".join(rows)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0.0


def _other(step: Report) -> str:
    other = step.get("other_cpu")  # absent from results saved before it was measured
    return "–" if other is None else f"{other:.2f}"


def _best_cells(best: Report | None) -> str:
    if best is None:
        return "– | – | –"
    return f"{_n(best['deliveries_per_s'])} | {_ms(best['p50_ms'])} | {_ms(best['p99_ms'])}"


def ramp_summary(reports: list[Report]) -> str:
    """Side by side: best sustained rate per server under both bounds, and ours over theirs."""
    if not reports:
        return ""
    cfg = reports[0]["config"]
    target, limit = cfg["target_p99_ms"], cfg["p99_limit_ms"]
    rows = [
        f"**{reports[0]['scenario']}: {cfg['users']} users in one room, {cfg['senders']} senders, "
        f"{cfg['msg_size']}-byte messages**",
        "",
        f"| server | deliveries/s at p99 ≤ {target:g} ms | p50 ms | p99 ms | deliveries/s at p99 ≤ {limit:g} ms "
        "| p50 ms | p99 ms | join time s | max server CPU | max generator CPU | max other CPU | load avg before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        join = r.get("join", {})
        steps = r.get("steps", [])
        others = [s["other_cpu"] for s in steps if "other_cpu" in s]
        load = r.get("loadavg_before") or [0.0]
        rows.append(
            f"| {r['server']} | {_best_cells(r.get('best_at_target'))} | {_best_cells(r.get('best'))} | "
            f"{join.get('join_secs', 0):.2f} | {max((s['server_cpu'] for s in steps), default=0):.2f} | "
            f"{r.get('max_gen_cpu', 0):.2f} | {f'{max(others):.2f}' if others else '–'} | {load[0]:.2f} |"
        )
    ratio = ramp_ratios(reports)
    if ratio:
        rows += ["", "Ratio " + ", ".join(f"{k}: **{v:.3g}**" for k, v in ratio.items())]
    return "\n".join(rows)


def ramp_ratios(reports: list[Report]) -> dict[str, float]:
    """hanchat over every other server, and the gateway over hanchat direct, under both bounds."""
    by = {r["server"]: r for r in reports}
    ours = by.get("hanchat")
    out: dict[str, float] = {}
    if ours is None:
        return out
    cfg = ours["config"]
    for name, other in by.items():
        if name == "hanchat":
            continue
        top, bottom = (other, ours) if name == "gateway" else (ours, other)
        label = "gateway/hanchat direct" if name == "gateway" else f"hanchat/{name}"
        for key, bound in (("best_at_target", cfg["target_p99_ms"]), ("best", cfg["p99_limit_ms"])):
            a, b = top.get(key), bottom.get(key)
            if a and b and b["deliveries_per_s"] > 0:
                out[f"{label} at p99 ≤ {bound:g} ms"] = a["deliveries_per_s"] / b["deliveries_per_s"]
    return out


# ---------------------------------------------------------------- the others


def joins_table(reports: list[Report]) -> str:
    rows = [
        "| server | users | concurrency | joined | all joined (s) | all 103/JOIN notices delivered (s) "
        "| notices | server CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        res = r["result"]
        rows.append(
            f"| {r['server']} | {r['config']['users']:,} | {r['config']['concurrency']} | {res['joined']:,} | "
            f"{res['join_secs']:.2f} | {res['notices_secs']:.2f} | {res['notices']:,} | {r['server_cpu_secs']:.1f} |"
        )
    return "\n".join(rows)


def idle_table(reports: list[Report]) -> str:
    rows = [
        "| server | joined connections | RSS before (KiB) | RSS after (KiB) | bytes per connection (growth) "
        "| bytes per connection (total RSS) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        rows.append(
            f"| {r['server']} | {r['joined']:,} | {r['rss_kib_before']:,} | {r['rss_kib_after']:,} | "
            f"{_n(r['rss_bytes_per_conn'])} | {_n(r['total_rss_bytes_per_conn'])} |"
        )
    return "\n".join(rows)


def soak_table(report: Report) -> str:
    cfg = report["config"]
    t = report.get("totals", {})
    samples = report["samples"]
    others = [s["other_cpu"] for s in samples if "other_cpu" in s]
    rows = [
        f"Soak on {report['server']}: {cfg['secs']:g} s, {cfg['users']} users, {cfg['senders']} senders at "
        f"{cfg['rate']:g} msg/s (every {cfg['whisper_every']}th tick whispers at {cfg['whisper_rate']:g}/s), "
        f"{cfg['churn_rate']:g} churn cycles/s",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| ticks | {len(samples)} |",
        f"| messages sent / deliveries expected / delivered | {t.get('sent', 0):,} / {t.get('expected', 0):,} / "
        f"{t.get('delivered', 0):,} |",
        f"| lost deliveries, dropped users | {t.get('lost', 0):,}, {t.get('dropped_users', 0):,} |",
        f"| churn cycles started / completed / failed | {t.get('churn_started', 0):,} / {t.get('churn_done', 0):,} "
        f"/ {t.get('churn_failed', 0):,} |",
        f"| RSS empty → first tick → last tick (KiB) | {report['rss_kib_empty']:,} → "
        f"{samples[0]['rss_kib'] if samples else 0:,} → {samples[-1]['rss_kib'] if samples else 0:,} |",
        f"| RSS growth, last quarter vs first quarter (KiB) | {report.get('rss_growth_kib', 0):,} |",
        f"| open fds: empty, min–max during, after closing all | {report['fds_empty']}, "
        f"{report.get('fds_min', 0)}–{report.get('fds_max', 0)}, {report['fds_after_close']} |",
        f"| tick p99 (ms): median, worst | {_median([s['p99_ms'] for s in samples]):.1f}, "
        f"{max((s['p99_ms'] for s in samples), default=0):.1f} |",
        f"| other CPU on the machine (cores): median, worst tick | {_median(others):.2f}, "
        f"{max(others, default=0):.2f} |" if others else "| other CPU on the machine | not measured |",
    ]
    return "\n".join(rows)


def machine_table(info: dict[str, Any]) -> str:
    load = info.get("loadavg") or (0, 0, 0)
    return (
        f"{info['cpu']}, {info['cpus']} CPUs, {info['mem_gib']} GiB, Linux {info['kernel']}, "
        f"Python {info['python']}, uvloop {info.get('uvloop')}, {info.get('gcc')}; "
        f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
