"""The call log as an HTML page: what each platform was asked, answered, and what it did."""

from __future__ import annotations

import html
import json
from typing import Any

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2330}
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .5rem;border-bottom:1px solid #e3e6ec;
vertical-align:top;text-align:left}th{background:#f5f6f8;position:sticky;top:0}
.s2{color:#137333}.s4{color:#b06000}.s5,.fault{color:#c5221f}code{font-size:12px}
details summary{cursor:pointer;color:#3558c8}pre{white-space:pre-wrap;max-width:70ch;margin:.3rem 0}
nav a{margin-right:.6rem}.effect{font-weight:600}
"""


def _status_class(call: dict[str, Any]) -> str:
    if call.get("fault"):
        return "fault"
    return f"s{str(call.get('status', ''))[:1]}"


def render_call_log(calls: list[dict[str, Any]], providers: list[str], selected: str | None) -> str:
    links = ['<a href="/">all</a>'] + [
        f'<a href="/?provider={html.escape(p)}">{"<b>" + p + "</b>" if p == selected else p}</a>'
        for p in providers
    ]
    rows = []
    for call in calls:
        body = json.dumps(call.get("body"), indent=2, default=str)
        query = f"?{call['query']}" if call.get("query") else ""
        effect = call.get("effect", "")
        request = f"{call.get('method', '')} {call.get('path', '')}{query}"
        target = " ".join(str(call.get(k, "")) for k in ("object_type", "object_id")).strip()
        rows.append(
            "<tr>"
            f"<td>{call.get('seq')}</td><td>{html.escape(str(call.get('time', ''))[11:23])}</td>"
            f"<td>{html.escape(call.get('provider', ''))}</td>"
            f"<td><code>{html.escape(request)}</code></td>"
            f'<td class="{_status_class(call)}">{call.get("status", "")}'
            f"{' (injected)' if call.get('fault') else ''}</td>"
            f'<td class="effect">{html.escape(effect)} {html.escape(target)}</td>'
            f"<td><code>{html.escape(call.get('idempotency_key') or '')}</code></td>"
            f"<td><details><summary>body</summary><pre>{html.escape(body)}</pre></details></td>"
            "</tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>sandbox call log</title>"
        f"<style>{_STYLE}</style></head><body><h1>Sandbox call log</h1>"
        f"<nav>{' '.join(links)}</nav><p>{len(calls)} calls, newest first. "
        "JSON at <a href='/_calls'>/_calls</a>; faults at <a href='/_faults'>/_faults</a>.</p>"
        "<table><tr><th>#</th><th>time</th><th>provider</th><th>request</th><th>status</th>"
        "<th>effect</th><th>idempotency key</th><th></th></tr>" + "".join(rows) + "</table></body></html>"
    )
