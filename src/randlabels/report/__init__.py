"""The reproduction report: verdict table, figures and settings of an output directory.

randlabels report results/          # writes results/report.html and results/report.md

from randlabels.report import write_report
html_path, md_path = write_report("results")
"""

from __future__ import annotations

import os
from pathlib import Path

from randlabels.report.collect import collect
from randlabels.report.html import render_html
from randlabels.report.markdown import render_markdown
from randlabels.utils.io import atomic_write_text


def write_report(out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``out_dir/report.html`` (self-contained) and ``out_dir/report.md``, each
    atomically; both are rendered before either is written. Returns their paths."""
    out_dir = Path(out_dir)
    data = collect(out_dir)
    html_text = render_html(data)
    md_text = render_markdown(data)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write_text(md_path, md_text)
    atomic_write_text(html_path, html_text)
    return html_path, md_path


__all__ = ["collect", "render_html", "render_markdown", "write_report"]
