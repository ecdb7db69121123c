"""The page against the tables it must follow: the server events its reducer handles against the protocol
table (tcp_server/protocol/table.py), its commands against the terminal client's (chat_client/commands.py),
and its modules (each one job, none over ~300 lines, every import a file that is served)."""

from __future__ import annotations

import json
import pathlib
import re

from chat_client.commands import COMMANDS
from tcp_server.protocol.table import COUNTED_EVENTS, SERVER_SPECS
from tests.node_runner import ROOT, run_node, stage
from web_gateway.app import STATIC_DIR
from web_gateway.i18n import all_strings, page_rules

MAX_MODULE_LINES = 300


def page_tables(where: pathlib.Path) -> dict[str, list[str]]:
    script = (
        "const p = await import('./static/protocol.js'); const c = await import('./static/commands.js');"
        "console.log(JSON.stringify({handled: p.HANDLED, gateway: p.GATEWAY_EVENTS, commands: c.COMMANDS}));"
    )
    done = run_node(stage(where), "--input-type=module", "-e", script)
    assert done.returncode == 0, done.stderr
    tables: dict[str, list[str]] = json.loads(done.stdout)
    return tables


def test_the_reducer_handles_every_event_of_the_protocol_table_and_no_other(tmp_path: pathlib.Path) -> None:
    """Each event of the table has a handler in static/protocol.js, or a sentence the page is given (it is
    then said in the log with its fields); a handler of an event the table lacks is a typo or a leftover."""
    tables = page_tables(tmp_path)
    handled = set(tables["handled"])
    table = {spec.event for spec in SERVER_SPECS if spec.event}
    sentences = page_rules(4096, 10, 20)["sentences"]
    strings = all_strings()
    for event in sorted(table):
        assert event in handled or event in sentences, (
            f"the page's reducer (static/protocol.js) neither handles the event {event!r} nor has its sentence "
            "(the table's text_keys)")
        if event not in handled:
            for lang, texts in strings.items():
                assert sentences[event] in texts, f"the page is not given {event!r}'s sentence in {lang}"
    for event in sorted(handled - table):
        assert event in tables["gateway"], (
            f"static/protocol.js handles {event!r}, which is no event of the protocol table nor the gateway's own")
    assert set(COUNTED_EVENTS) <= handled  # what a resume position counts, the page sees


def test_the_page_has_the_terminal_clients_commands(tmp_path: pathlib.Path) -> None:
    page = page_tables(tmp_path)["commands"]
    for command in COMMANDS:
        assert command in page, f"the page (static/commands.js) lacks the terminal client's command {command}"
    for command in page:
        assert command in COMMANDS, f"the page has {command}, which the terminal client (chat_client/commands.py) lacks"
    assert list(page) == list(COMMANDS)  # same order: the help lists them alike


def test_modules_are_small_and_import_only_served_files() -> None:
    modules = sorted(STATIC_DIR.glob("*.js"))
    assert len(modules) >= 10
    for path in modules:
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name} is over {MAX_MODULE_LINES} lines"
        for target in re.findall(r"^(?:import|export)\b[^'\"]*?from\s+'([^']+)'", text, re.M):
            assert re.fullmatch(r"\./[a-z0-9]+\.js", target), f"{path.name} imports {target!r}: a relative ./name.js"
            assert (STATIC_DIR / target[2:]).is_file(), f"{path.name} imports {target}, which static/ does not hold"
    assert (ROOT / "static" / "app.js").is_file()
