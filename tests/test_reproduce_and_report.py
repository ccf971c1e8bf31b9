"""`randlabels reproduce` and `randlabels report`: the plan, skips without CIFAR-10, --only,
the output-directory lock, resuming after SIGTERM, the report's contents, TensorBoard."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from randlabels.cli import main
from randlabels.data.dataset import ArrayDataset
from randlabels.experiments import cifar_alignment_runs, common, e4a_f_synthetic, e4b_f_cifar, plan
from randlabels.report.claims import CLAIMS, claim_rows
from randlabels.train.run import read_metrics

# 256 samples in batches of 128: 2 steps per epoch, 6 per run.
SMALL = {"n_samples": 256, "epochs": 3, "widths": [32, 8]}  # d + 1 = 31 units at least
TINY_E4A = {
    "seeds": 2,
    "batch_size": 128,
    "overrides": {k: SMALL for k in e4a_f_synthetic.SETTINGS},
}


def _no_cifar(mp: pytest.MonkeyPatch, root: Path) -> Path:
    """Empty data and cache directories (no CIFAR-10 anywhere) and a tiny E4a profile."""
    mp.setenv("RANDLABELS_DATA_DIR", str(root / "data"))
    mp.setenv("RANDLABELS_CACHE", str(root / "cache"))
    mp.setitem(e4a_f_synthetic.PROFILES, "quick", TINY_E4A)
    return root / "data"


@pytest.fixture
def no_cifar(tmp_path, monkeypatch):
    return _no_cifar(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """(output directory, exit code, stderr) of one offline `randlabels reproduce`, shared by
    the tests below; tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("reproduced")
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        _no_cifar(mp, root)
        code = reproduce(root / "out")
    return root / "out", code, err.getvalue()


def copy_of(reproduced, tmp_path: Path) -> Path:
    shutil.copytree(reproduced[0], tmp_path / "out")
    return tmp_path / "out"


def reproduce(out: Path, *args: str) -> int:
    return main(["reproduce", "--out", str(out), "--no-progress", *args])


def verdict_rows(md: str) -> list[list[str]]:
    """The cells of report.md's verdict table (claim, ..., verdict, experiment)."""
    rows = [line for line in md.splitlines() if re.match(r"\| C\d+ \|", line)]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]


def before_compute(text: str) -> str:
    """A report up to its Compute section (timings, dates, machine), which comes last."""
    for marker in ('<h2 id="compute">', "\n## Compute\n"):
        if marker in text:
            return text.split(marker)[0]
    raise AssertionError("the report has no Compute section")


def test_without_cifar10_only_e4a_runs_and_the_report_says_why(reproduced):
    out, code, err = reproduced
    assert code == 0, err
    no_cifar = out.parent / "data"
    saved = json.loads((out / "plan.json").read_text())
    status = {e["name"]: e for e in saved["experiments"]}
    assert [e["name"] for e in saved["experiments"]][:3] == ["E4a", "E2", "E4b"]
    assert status["E4a"]["status"] == "done"
    for name in ("E1", "E2", "E3", "E4b", "E5", "E6a", "E6t"):
        assert status[name]["status"] == "skipped"
        assert f"CIFAR-10 not found in {no_cifar}" in status[name]["reason"]
        assert "--data-dir DIR" in status[name]["reason"]
    assert "not implemented" in status["E8"]["reason"] and "ImageNet" in status["E8"]["reason"]
    # Progress of the whole plan on stderr.
    minutes, seconds = divmod(plan.QUICK_ESTIMATE_S["E4a"], 60)  # the measured timing table
    assert re.search(rf"E4a\s+to run\s+~{minutes}m {seconds:02d}s", err)
    assert re.search(r"E4b\s+skipped\s+same as E2", err)
    assert "estimated remaining" in err and "skipped 9" in err
    md = (out / "report.md").read_text()
    assert "![E4a: f on synthetic Gaussian data" in md and "(E4a/e4a_f_synthetic.png)" in md
    assert "E2 skipped: CIFAR-10 not found" in md  # in the verdict table
    assert "randlabels data prepare cifar10 --source" in md  # how to add it
    c1 = [(r[7], r[8]) for r in verdict_rows(md) if r[0] == "C1"]
    assert c1[0][1] == "E4a" and c1[1] == ("not measured", "E2") and len(c1) == 2


def test_report_html_is_one_self_contained_file_with_a_row_per_claim(reproduced):
    out = reproduced[0]
    html = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<link" not in html and "<script" not in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 1 and base64.b64decode(images[0]).startswith(b"\x89PNG")
    claims = re.findall(r"<tr><td>(C\d+)</td>", html)
    assert sorted(set(claims), key=lambda c: int(c[1:])) == [c.id for c in CLAIMS]
    assert claims == sorted(claims, key=lambda c: int(c[1:]))  # in claim order
    # Settings of the experiment and of each of its 6 runs, the environment.
    assert html.count("<summary>mlp-") == 6 and '"n_samples": 256' in html
    assert "seed: 1" in html
    compute = html.split('<h2 id="compute">')[1]
    assert "torch: " + torch.__version__ in compute and "git commit:" in compute


def test_a_claim_measured_twice_gets_two_rows_and_unmeasured_ones_say_why():
    def verdict(claim, mean):
        est = {"mean": mean, "low": mean - 0.1, "high": mean + 0.1, "n": 3, "values": [mean] * 3}
        return {"claim": claim, "statistic": "ratio", "estimate": est, "threshold": "< 0.5",
                "verdict": "reproduced", "profile": "quick", "data": "d"}  # fmt: skip

    results = {
        "E4a": {"config": {"seeds": 3}, "verdicts": [verdict("C1", 0.2)]},
        "E2": {"config": {"seeds": 5}, "verdicts": [verdict("C1", 0.03), verdict("C2", 0.04)]},
    }
    rows = claim_rows(results, lambda name: f"skipped: because of {name}")
    assert [(r.claim, r.experiment) for r in rows[:3]] == [
        ("C1", "E4a"),
        ("C1", "E2"),
        ("C2", "E2"),
    ]
    assert rows[0].statistic == "ratio: 0.2 [0.1, 0.3] 95% CI (n=3)" and rows[1].seeds == "5"
    c3 = next(r for r in rows if r.claim == "C3")
    assert c3.verdict == "not measured" and c3.detail == "E4a ran but recorded no verdict for C3"
    c5 = next(r for r in rows if r.claim == "C5")
    assert c5.verdict == "not measured" and c5.detail == "E4b skipped: because of E4b"
    assert [r.claim for r in rows if r.verdict == "not measured"] == [
        "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10", "C11",
    ]  # fmt: skip


def test_only_takes_names_and_shorthands_in_plan_order_and_rejects_unknown_names(
    no_cifar, tmp_path, capsys
):
    assert plan.select("e6a,E4") == ["E4a", "E4b", "E6a"]
    assert plan.select(" E6 ") == ["E6a", "E6t"]
    assert plan.select("E7,E1") == ["E1", "E7"]  # E7 reuses E1's runs: E1 first
    assert plan.select(None)[-1] == "E8"
    out = tmp_path / "out"
    assert reproduce(out, "--only", "E2,E9") == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'E9'" in err and "E4 (E4a+E4b), E6 (E6a+E6t)" in err
    assert "E1, E2, E3" in err
    assert not out.exists()  # refused before anything was written
    assert reproduce(out, "--seeds", "0") == 2
    assert "--seeds must be >= 1, got 0" in capsys.readouterr().err


def test_a_second_invocation_on_the_same_output_is_refused_naming_the_holder(
    reproduced, no_cifar, tmp_path, capsys
):
    out = copy_of(reproduced, tmp_path)
    plan_before = (out / "plan.json").read_text()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from randlabels.utils.lock import pid_lock\n"
         f"with pid_lock({str(out / 'reproduce.lock')!r}, 'x'):\n"
         "    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert reproduce(out, "--only", "E4a") == 2
        err = capsys.readouterr().err
        assert f"output directory {out} is in use by another process (pid {holder.pid}" in err
        assert (out / "plan.json").read_text() == plan_before
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert reproduce(out, "--only", "E4a") == 0  # released when its holder exits


def test_a_rerun_skips_done_experiments_and_reruns_changed_ones(
    reproduced, no_cifar, tmp_path, capsys
):
    out = copy_of(reproduced, tmp_path)
    results = out / "E4a" / "results.json"
    stamp = results.stat().st_mtime_ns
    assert reproduce(out, "--only", "E4a") == 0
    assert "done before with the same settings; not rerun" in capsys.readouterr().err
    assert results.stat().st_mtime_ns == stamp
    invocations = json.loads((out / "plan.json").read_text())["invocations"]
    assert [i["outcome"] for i in invocations] == ["finished", "finished"]
    assert "E2 not selected (--only E4a)" in (out / "report.md").read_text()
    # Other settings (here: 3 seeds) rerun the experiment; the 6 runs it shares are reused.
    runs = {p.name: (p / "summary.json").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert reproduce(out, "--only", "E4a", "--seeds", "3") == 0
    assert results.stat().st_mtime_ns != stamp
    assert json.loads(results.read_text())["config"]["seeds"] == 3
    after = {p.name: (p / "summary.json").stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert len(after) == 9 and all(after[name] == t for name, t in runs.items())


def test_with_cifar10_e4b_reuses_e2s_runs_and_both_claims_are_measured(
    no_cifar, tmp_path, monkeypatch
):
    """A tiny image set stands in for CIFAR-10 (as in test_tracking_and_experiments.py)."""
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(256, 3, 6, 6, generator=g), size=12)
    x = (x * 255).round().to(torch.uint8)
    y = torch.randint(0, 10, (256,), generator=g)
    images = ArrayDataset("tiny", x, y, x[:64], y[:64], [str(i) for i in range(10)])
    monkeypatch.setattr(plan, "_missing_cifar10", lambda data_dir: None)
    monkeypatch.setattr(common, "dataset_for", lambda cfg: images)
    monkeypatch.setattr(cifar_alignment_runs, "dataset_for", lambda cfg: images)
    tiny = {"n_train": 128, "n_test": 64, "epochs": 2, "seeds": 2, "first_kernel": 3,
            "widths": [32, 8]}  # fmt: skip
    monkeypatch.setitem(cifar_alignment_runs.PROFILES, "quick", tiny)  # E2's profiles
    monkeypatch.setitem(e4b_f_cifar.PROFILES, "quick", {**tiny, "f_epochs": [1, 2]})
    out = tmp_path / "out"
    assert reproduce(out, "--only", "E4b,E2") == 0
    status = {
        e["name"]: e["status"] for e in json.loads((out / "plan.json").read_text())["experiments"]
    }
    assert list(status) == ["E2", "E4b"] and set(status.values()) == {"done"}
    assert len(list((out / "runs").iterdir())) == 4  # 2 label regimes x 2 seeds, shared
    md = (out / "report.md").read_text()
    measured = [(r[0], r[8]) for r in verdict_rows(md) if r[7] != "not measured"]
    assert measured == [("C1", "E2"), ("C2", "E2"), ("C5", "E4b")]
    assert "E4a not selected (--only E4b,E2)" in md
    assert "![E4b: " in md and "![E2: " in md


def test_a_failing_experiment_is_recorded_and_the_report_still_written(
    no_cifar, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(e4a_f_synthetic.PROFILES, "quick", {**TINY_E4A, "batch_size": 0})
    out = tmp_path / "out"
    assert reproduce(out, "--only", "E4a,E2") == 2
    err = capsys.readouterr().err
    assert "E4a failed" in err
    entry = json.loads((out / "plan.json").read_text())["experiments"][0]
    assert entry["status"] == "failed" and "train.batch_size" in entry["reason"]
    assert "E4a failed: ConfigError" in (out / "report.md").read_text()


def test_tensorboard_gets_every_scalar_of_every_finished_run(no_cifar, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from randlabels.report.tensorboard import export_runs

    run = tmp_path / "runs" / "scnn-abc"
    run.mkdir(parents=True)
    lines = [
        {"step": 0, "epoch": 0.0, "test_acc": 0.1, "align.conv.M_data": 2.0,
         "align.conv.M_random": 2.1, "align.conv.f": [0.1, 0.2]},
        {"step": 10, "epoch": 1.0, "train_loss": 2.3, "train_acc": 0.2, "test_acc": 0.3,
         "images_per_s": None, "align.conv.M_data": 1.0, "align.conv.M_random": 2.2},
    ]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "runs" / "unfinished").mkdir()
    (run / "summary.json").write_text("{}")
    assert export_runs(tmp_path / "runs", tmp_path / "tb") == [tmp_path / "tb" / "scnn-abc"]
    acc = EventAccumulator(str(tmp_path / "tb" / "scnn-abc"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert tags == {"test_acc", "train_loss", "train_acc", "align/conv/M_data",
                    "align/conv/M_random"}  # fmt: skip
    assert [(e.step, e.value) for e in acc.Scalars("align/conv/M_data")] == [(0, 2.0), (10, 1.0)]
    assert export_runs(tmp_path / "runs", tmp_path / "tb") == []  # up to date: not rewritten
    assert not (tmp_path / "tb" / "unfinished").exists()


def test_reproduce_tensorboard_writes_each_run_or_says_how_to_install(
    reproduced, no_cifar, tmp_path, monkeypatch, capsys
):
    pytest.importorskip("tensorboard")
    out = copy_of(reproduced, tmp_path)
    assert reproduce(out, "--only", "E4a", "--tensorboard") == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == runs
    assert all(list((out / "tensorboard" / r).glob("events.out.tfevents.*")) for r in runs)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    assert reproduce(tmp_path / "other", "--tensorboard") == 2
    assert "pip install tensorboard" in capsys.readouterr().err


def test_report_command_and_its_errors(reproduced, tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "nothing to report" in capsys.readouterr().err
    out = reproduced[0]
    first = (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0  # the same report, from the files alone
    assert before_compute((out / "report.md").read_text()) == before_compute(first)


# ------------------------------------------------------------ interrupted and resumed
# The child process installs the tiny profile, then sends itself SIGTERM at one point
# (a real signal, at a reproducible moment): during a training run, during E4a's
# analysis (after all its training), or while the report is being rendered.
CHILD = """
import os, signal, sys
from randlabels.experiments import e4a_f_synthetic as e4a
e4a.PROFILES["quick"] = {tiny!r}
out, kill = sys.argv[1], sys.argv[2]


def sigterm_self():
    os.kill(os.getpid(), signal.SIGTERM)


def before(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        sigterm_self()
        return original(*args, **kwargs)
    setattr(module, name, wrapper)


if kill.startswith("train:"):
    from randlabels.train import trainer
    _, run_prefix, at_step = kill.split(":")
    log = trainer.Trainer._log
    def _log(self, record):
        log(self, record)
        if self.run_dir.name.startswith(run_prefix) and self.step == int(at_step):
            sigterm_self()
    trainer.Trainer._log = _log
elif kill == "analysis":
    before(e4a, "_verdicts")
elif kill == "report":
    import randlabels.report
    before(randlabels.report, "render_html")
from randlabels.cli import main
sys.exit(main(["reproduce", "--out", out, "--no-progress"]))
"""


def _child(out: Path, kill: str) -> subprocess.CompletedProcess:
    # The data directory of the shared run, so that both reports name the same one.
    root = out.parent
    env = {"RANDLABELS_DATA_DIR": str(root / "data"), "RANDLABELS_CACHE": str(root / "cache")}
    return subprocess.run(
        [sys.executable, "-c", CHILD.format(tiny=TINY_E4A), str(out), kill],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _finished(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/summary.json")}


@pytest.mark.slow
def test_sigterm_in_training_analysis_and_report_then_rerun_gives_the_same_report(reproduced):
    ref = reproduced[0]  # uninterrupted, in this process
    out = ref.parent / "killed"

    first = _child(out, "train:mlp-middle-s0:2")  # end of epoch 1 of 3
    assert first.returncode == 130, first.stderr
    assert "interrupted at step 2" in first.stderr and "again to resume" in first.stderr
    done = _finished(out)
    assert sorted(n.rsplit("-", 1)[0] for n in done) == ["mlp-left-s0", "mlp-left-s1"]
    middle = next((out / "runs").glob("mlp-middle-s0-*"))
    assert torch.load(middle / "checkpoints/last.pt", weights_only=False)["step"] == 2
    entry = json.loads((out / "plan.json").read_text())["experiments"][0]
    assert entry["name"] == "E4a" and entry["status"] == "pending"
    assert "interrupted" in entry["reason"] and not (out / "E4a/results.json").exists()

    second = _child(out, "analysis")
    assert second.returncode == 130, second.stderr
    assert "interrupted by SIGTERM" in second.stderr and "again to continue" in second.stderr
    assert not (out / "E4a/results.json").exists()
    after_training = _finished(out)
    assert len(after_training) == 6
    assert all(after_training[n] == t for n, t in done.items())  # not trained again

    third = _child(out, "report")
    assert third.returncode == 130, third.stderr
    assert (out / "E4a/results.json").exists() and (out / "E4a/e4a_f_synthetic.png").exists()
    assert not (out / "report.html").exists() and not (out / "report.md").exists()
    results_stamp = (out / "E4a/results.json").stat().st_mtime_ns

    last = _child(out, "none")
    assert last.returncode == 0, last.stderr
    assert "done before with the same settings" in last.stderr
    assert (out / "E4a/results.json").stat().st_mtime_ns == results_stamp
    assert _finished(out) == after_training

    for name in ("report.md", "report.html"):
        resumed, uninterrupted = (out / name).read_text(), (ref / name).read_text()
        assert before_compute(resumed) == before_compute(uninterrupted), name
        assert "C11" in before_compute(resumed)
    assert "data:image/png;base64," in before_compute((out / "report.html").read_text())
    # Every run, the interrupted one included, ends as in the uninterrupted invocation.
    for run in (ref / "runs").iterdir():
        a = torch.load(run / "weights/final.pt")
        b = torch.load(out / "runs" / run.name / "weights/final.pt")
        assert all(torch.equal(a[k], b[k]) for k in a), run.name

        def strip(lines):
            return [{k: v for k, v in x.items() if k != "images_per_s"} for x in lines]

        assert strip(read_metrics(run)) == strip(read_metrics(out / "runs" / run.name))
    invocations = json.loads((out / "plan.json").read_text())["invocations"]
    assert [i["outcome"] for i in invocations] == ["interrupted"] * 3 + ["finished"]
