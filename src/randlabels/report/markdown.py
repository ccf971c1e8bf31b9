"""report.md: the Markdown twin of report.html (figures referenced as relative PNG paths)."""

from __future__ import annotations

import json

from randlabels.report.collect import ReportData
from randlabels.report.text import (
    COLUMNS,
    caption,
    compute_rows,
    row_cells,
    settings_rows,
    summary_line,
)


def render_markdown(data: ReportData) -> str:
    lines = [
        "# What do neural networks learn when trained with random labels? Reproduction report",
        "",
        summary_line(data),
        "",
        "## Claims and verdicts",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in data.claims:
        cells = row_cells(row)
        if row.detail:
            cells[2] = f"{cells[2]} ({row.detail})" if cells[2] else row.detail
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Figures", ""]
    for exp in data.experiments:
        lines += [f"### {exp.title}", ""]
        for path in exp.figures:
            text = caption(exp, path)
            lines += [f"![{text}]({exp.name}/{path.name})", "", f"*{text}*", ""]
        if not exp.figures:
            lines += ["(no figures)", ""]
    lines += ["## Experiments without results", ""]
    lines += [f"- {name}: {why}" for name, why in data.not_run] or ["none"]
    lines += ["", "## Settings", ""]
    lines += [f"- {k}: {v}" for k, v in settings_rows(data)]
    for exp in data.experiments:
        config = json.dumps(exp.results.get("config", {}), indent=2, sort_keys=True)
        lines += ["", f"### {exp.name} experiment settings (results.json config)", ""]
        lines += ["```json", config, "```"]
    lines += ["", f"### Training runs ({len(data.runs)})", ""]
    for name, text in data.runs:
        lines += [f"<details><summary>{name}</summary>", "", "```yaml", text.rstrip(), "```",
                  "", "</details>", ""]  # fmt: skip
    # Everything that may differ between two invocations giving the same results comes
    # last, under one heading, so that reports can be compared up to it.
    lines += ["", "## Compute", ""]
    lines += [f"- {k}: {v}" for k, v in compute_rows(data)]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
