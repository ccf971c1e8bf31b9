"""report.html: one self-contained file (inline CSS, figures as base64 PNG data URIs)."""

from __future__ import annotations

import base64
import json
from html import escape

from randlabels.report.collect import ReportData
from randlabels.report.text import (
    COLUMNS,
    caption,
    compute_rows,
    row_cells,
    settings_rows,
    summary_line,
)

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f2f2f2; }
td.reproduced { background: #dff0d8; } td.not-reproduced { background: #f2dede; }
td.inconclusive { background: #fcf8e3; } td.not-measured { background: #eee; color: #666; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
.detail { color: #555; font-size: 0.9em; }
"""


def render_html(data: ReportData) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>randlabels: reproduction report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>What do neural networks learn when trained with random labels? "
        "Reproduction report</h1>",
        f"<p>{escape(summary_line(data))}</p>",
        '<h2 id="verdicts">Claims and verdicts</h2>',
        _verdict_table(data),
        '<h2 id="figures">Figures</h2>',
    ]
    for exp in data.experiments:
        parts.append(f"<h3>{escape(exp.title)}</h3>")
        for path in exp.figures:
            b64 = base64.b64encode(path.read_bytes()).decode("ascii")
            text = escape(caption(exp, path))
            parts.append(
                f'<figure><img src="data:image/png;base64,{b64}" alt="{text}">'
                f"<figcaption>{text}</figcaption></figure>"
            )
        if not exp.figures:
            parts.append("<p>(no figures)</p>")
    parts.append('<h2 id="not-run">Experiments without results</h2>')
    parts.append(_list(f"{name}: {why}" for name, why in data.not_run) or "<p>none</p>")
    parts.append('<h2 id="settings">Settings</h2>')
    parts.append(_list(f"{k}: {v}" for k, v in settings_rows(data)))
    for exp in data.experiments:
        config = json.dumps(exp.results.get("config", {}), indent=2, sort_keys=True)
        parts.append(_details(f"{exp.name} experiment settings (results.json config)", config))
    runs = "".join(_details(name, text) for name, text in data.runs)
    parts.append(
        f"<details><summary>Training runs ({len(data.runs)}): config.yaml of each run "
        f"directory</summary>{runs}</details>"
    )
    # Everything that may differ between two invocations giving the same results comes
    # last, under one heading, so that reports can be compared up to it.
    parts.append('<h2 id="compute">Compute</h2>')
    parts.append(_list(f"{k}: {v}" for k, v in compute_rows(data)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _verdict_table(data: ReportData) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = []
    for row in data.claims:
        cells = row_cells(row)
        klass = row.verdict.replace(" ", "-")
        tds = []
        for col, value in zip(COLUMNS, cells):
            text = escape(value)
            if col == "statistic" and row.detail:
                text += f'<div class="detail">{escape(row.detail)}</div>'
            attr = f' class="{klass}"' if col == "verdict" else ""
            tds.append(f"<td{attr}>{text}</td>")
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(rows) + "</table>"


def _list(items) -> str:
    lis = "".join(f"<li>{escape(str(item))}</li>" for item in items)
    return f"<ul>{lis}</ul>" if lis else ""


def _details(summary: str, body: str) -> str:
    body = escape(body, quote=False)
    return f"<details><summary>{escape(summary)}</summary><pre>{body}</pre></details>"
