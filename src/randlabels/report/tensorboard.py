"""TensorBoard event files from the runs' metrics.jsonl (optional: needs `tensorboard`).

Every numeric scalar a run logged becomes a TensorBoard scalar at its step: the training
loss and accuracy, test loss and accuracy, and the AlignmentTracker's
``align.<layer>.M_data`` / ``.M_random`` / ``.ratio`` (dots become slashes, so
TensorBoard groups them by layer). Lists (f, eigenvalues) are left out.

    tensorboard --logdir results/tensorboard
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from randlabels.train.run import is_finished, read_metrics

STAMP = "source.json"  # which metrics.jsonl an export was made from


def require_tensorboard() -> None:
    """Raise RuntimeError with the install command when TensorBoard cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(
            "--tensorboard needs the tensorboard package, which is not installed "
            f"({exc}); install it with: pip install tensorboard"
        ) from None


def export_runs(runs_root: str | os.PathLike, dest_root: str | os.PathLike) -> list[Path]:
    """Export every finished run under ``runs_root`` to ``dest_root/<run name>/``; runs
    exported before from the same metrics are left alone. Returns the new exports."""
    runs_root, dest_root = Path(runs_root), Path(dest_root)
    if not runs_root.is_dir():
        return []
    written = []
    for run_dir in sorted(p for p in runs_root.iterdir() if p.is_dir()):
        if is_finished(run_dir) and export_run(run_dir, dest_root / run_dir.name):
            written.append(dest_root / run_dir.name)
    return written


def export_run(run_dir: str | os.PathLike, dest: str | os.PathLike) -> bool:
    """Write one run's scalars as event files into ``dest`` (replaced whole, so TensorBoard
    never sees a run twice). Returns False when ``dest`` is already up to date."""
    from torch.utils.tensorboard import SummaryWriter

    run_dir, dest = Path(run_dir), Path(dest)
    digest = hashlib.sha256((run_dir / "metrics.jsonl").read_bytes()).hexdigest()
    stamp = dest / STAMP
    if stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")).get("sha256") == digest:
        return False
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    writer = SummaryWriter(log_dir=str(tmp))
    try:
        for line in read_metrics(run_dir):
            for key, value in line.items():
                if key in ("step", "epoch") or isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)):
                    writer.add_scalar(key.replace(".", "/"), value, global_step=line["step"])
    finally:
        writer.close()
    stamp_text = json.dumps({"run_dir": str(run_dir), "sha256": digest})
    (tmp / STAMP).write_text(stamp_text + "\n", encoding="utf-8")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return True
