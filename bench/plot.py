"""PNG plots of the results with matplotlib (Agg backend: no display needed)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")

PLOTS_DIR = Path(__file__).with_name("plots")  # committed: BENCHMARKS.md links them

Report = dict[str, Any]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_ramps(reports: list[Report], name: str, out_dir: Path = PLOTS_DIR) -> Path:
    """Deliveries/s and p99 against offered deliveries/s, one line per server."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in reports:
        steps = r["steps"]
        offered = [s["offered_deliveries_per_s"] for s in steps]
        ax1.plot(offered, [s["deliveries_per_s"] for s in steps], marker="o", label=r["server"])
        ax2.plot(offered, [max(s["p99_ms"], 0.01) for s in steps], marker="o", label=r["server"])
    cfg = reports[0]["config"]
    offered_all = sorted({s["offered_deliveries_per_s"] for r in reports for s in r["steps"]})
    if offered_all:
        ax1.plot([offered_all[0], offered_all[-1]], [offered_all[0], offered_all[-1]], ls=":", color="grey",
                 label="delivered = offered")
    ax1.set_yscale("log")
    ax1.set_xlabel("offered deliveries/s")
    ax1.set_ylabel("delivered/s")
    ax1.set_title("throughput")
    ax2.axhline(cfg["target_p99_ms"], ls="--", color="grey", lw=1)
    ax2.axhline(cfg["p99_limit_ms"], ls=":", color="grey", lw=1)
    ax2.set_yscale("log")
    ax2.set_xlabel("offered deliveries/s")
    ax2.set_ylabel("p99 latency (ms)")
    ax2.set_title("p99 latency (dashed: 50 ms, dotted: 100 ms)")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{reports[0]['scenario']}: {cfg['users']} users, {cfg['senders']} senders, "
                 f"{cfg['msg_size']}-byte messages")
    fig.tight_layout()
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.info("wrote %s", path)
    return path


def plot_soak(report: Report, name: str, out_dir: Path = PLOTS_DIR) -> Path:
    """The server's RSS and open descriptors over the soak."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = report["samples"]
    t = [s["t"] / 60 for s in samples]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    ax1.plot(t, [s["rss_kib"] / 1024 for s in samples], marker=".")
    ax1.set_xlabel("minutes")
    ax1.set_ylabel("server RSS (MiB)")
    ax1.set_ylim(bottom=0)
    ax2.plot(t, [s["fds"] for s in samples], marker=".")
    ax2.set_xlabel("minutes")
    ax2.set_ylabel("server open descriptors")
    ax2.set_ylim(bottom=0)
    ax3.plot(t, [max(s["p99_ms"], 0.01) for s in samples], marker=".", label="tick p99 (ms)")
    ax3.set_yscale("log")
    ax3.set_xlabel("minutes")
    ax3.set_ylabel("p99 latency of the tick (ms)")
    if any("other_cpu" in s for s in samples):
        other = ax3.twinx()
        other.plot(t, [s.get("other_cpu", 0.0) for s in samples], color="grey", ls=":", label="other CPU")
        other.set_ylabel("other work on the machine (cores, dotted)")
        other.set_ylim(0, 2)
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"soak on {report['server']}: {report['config']['users']} users, "
                 f"{report['config']['churn_rate']:g} churn cycles/s")
    fig.tight_layout()
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log.info("wrote %s", path)
    return path
