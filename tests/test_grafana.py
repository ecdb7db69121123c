"""deploy/grafana/hanchat.json asks only for series the programs export, and shows all of ours."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from tests.gateway_fixtures import GatewayStack, JsonClient
from tests.helpers import LineClient
from tests.metrics_helpers import samples

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "hanchat.json"
METRIC = re.compile(r"\b((?:hanchat|process)_[a-zA-Z0-9_]+)\b")


def load() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def queries(dashboard: dict[str, Any]) -> Iterator[str]:
    """Every PromQL expression: panel targets (rows included) and template variables."""
    def walk(panels: list[dict[str, Any]]) -> Iterator[str]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield str(target["expr"])
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])
    for var in dashboard["templating"]["list"]:
        if var.get("type") == "query":
            query = var["query"]
            yield str(query["query"] if isinstance(query, dict) else query)


def family(sample_name: str) -> str:
    return re.sub(r"_(bucket|sum|count|total)$", "", sample_name)


def test_the_dashboard_is_well_formed() -> None:
    dashboard = load()
    assert dashboard["uid"] == "hanchat" and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]


async def test_every_query_names_a_metric_the_programs_export(
    make_gateway_stack: Callable[..., Awaitable[GatewayStack]],
) -> None:
    stack = await make_gateway_stack(server={"metrics_port": 0})
    assert stack.server.metrics is not None
    # Some traffic, so that every series has been touched once.
    line = await LineClient.connect("127.0.0.1", stack.server_port)
    page = await JsonClient.connect(stack.ws_url)
    try:
        await line.join("olga")
        await page.join("pete")
        exported = set()
        for url in (f"http://127.0.0.1:{stack.server.metrics.port}/metrics", stack.base_url + "metrics"):
            exported |= {name for name, _ in await samples(url)}
    finally:
        await page.close()
        await line.close()
    named: set[str] = set()
    for expr in queries(load()):
        names = METRIC.findall(expr)
        assert names, f"query names no metric: {expr}"
        for name in names:
            assert name in exported, f"{name} (in {expr}) is not exported"
        named |= set(names)
    # And the other way: every hanchat series has a place on the dashboard.
    ours = {family(n) for n in exported if n.startswith("hanchat_")}
    assert ours <= {family(n) for n in named}, ours - {family(n) for n in named}
