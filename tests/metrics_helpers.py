"""Scraping a Prometheus endpoint in tests: every sample by name and labels."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import TIMEOUT

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


async def scrape(url: str, connector: aiohttp.BaseConnector | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of one GET."""
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        async with session.get(url, headers=headers) as resp:
            return resp.status, await resp.text()


async def samples(url: str) -> Samples:
    status, body = await scrape(url)
    assert status == 200, body
    return parse(body)


def value(s: Samples, name: str, **labels: str) -> float:
    return s.get((name, frozenset(labels.items())), float("nan"))


async def wait_for_value(url: str, name: str, check: Callable[[float], bool], timeout: float = TIMEOUT,
                         **labels: str) -> Samples:
    """Scrape until ``check(value)``: counters move when the server gets to the traffic, not before."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        s = await samples(url)
        if check(value(s, name, **labels)):
            return s
        if loop.time() > deadline:
            raise AssertionError(f"{name}{labels} is {value(s, name, **labels)} after {timeout} s")
        await asyncio.sleep(0.05)


async def read_line_matching(stream: asyncio.StreamReader, pattern: str) -> re.Match[str]:
    """The first line of ``stream`` that matches ``pattern``."""
    seen = []
    while True:
        line = await asyncio.wait_for(stream.readline(), TIMEOUT * 4)
        if not line:
            raise AssertionError(f"no line matching {pattern!r} in {seen}")
        text = line.decode(errors="replace")
        seen.append(text)
        match = re.search(pattern, text)
        if match:
            return match


