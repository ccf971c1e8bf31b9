"""Command-line interface.

Usage:
    randlabels demo                  # offline, about a minute: random labels, synthetic data
    randlabels train --config configs/simple_cnn_random.yaml --out runs/a train.lr=0.01
    randlabels train model.name=mlp data.dataset=gaussian30 data.labels=random:10
    randlabels data prepare cifar10 --source cifar-10-python.tar.gz
    randlabels data info
    randlabels transfer --from runs/up --mode rescaled -c down.yaml data.split=1
    randlabels list                                   # models and datasets
    randlabels reproduce --data-dir /path/to/cifar10  # every experiment, then the report
    randlabels report results                         # results/report.html and report.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from randlabels import __version__


def _cmd_train(args: argparse.Namespace) -> int:
    from randlabels.train.config import load_config
    from randlabels.train.run import default_run_dir, run_training

    cfg = load_config(args.config, args.overrides)
    out = Path(args.out) if args.out else default_run_dir(cfg)
    print(f"run directory: {out}")
    summary = run_training(cfg, out, progress=not args.no_progress)
    if summary.get("skipped"):
        print("this run has already finished; nothing to do (delete the directory to rerun)")
    _print_summary(summary)
    return 0


def _print_summary(summary: dict) -> None:
    final = summary.get("final", {})
    parts = [f"steps {summary.get('steps')}", f"epochs {summary.get('epochs')}"]
    for key in ("epoch_train_acc", "train_acc", "test_acc", "train_full_acc"):
        if final.get(key) is not None:
            parts.append(f"{key} {final[key]:.4f}")
    if summary.get("train_time_s") is not None:
        parts.append(f"train time {summary['train_time_s']:.1f}s")
    print(", ".join(parts))


def _cmd_data_prepare(args: argparse.Namespace) -> int:
    from randlabels.data.registry import prepare_dataset

    path = prepare_dataset(args.name, args.source, data_dir=args.data_dir, cache_dir=args.cache_dir)
    print(f"prepared {args.name}: {path}")
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from randlabels.data.registry import dataset_info

    rows = dataset_info(cache_dir=args.cache_dir)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(
            "no prepared datasets in the cache; add one with "
            "'randlabels data prepare cifar10 --source PATH_OR_URL'"
        )
        return 0
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from randlabels.data.registry import DATASET_NAMES
    from randlabels.models import list_models

    print("models:   " + ", ".join(list_models()))
    print("datasets: " + ", ".join(DATASET_NAMES))
    print("streamed: imagenet (ILSVRC-2012 folders; data.source=DIR, data.image_size=224)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from randlabels.demo import run_demo

    run_demo(out_dir=args.out, progress=not args.no_progress)
    return 0


def _cmd_align(args: argparse.Namespace) -> int:
    from randlabels.align_cli import run_align

    layers = None if not args.layer else args.layer
    run_align(args.targets, layers, args.out, probe=args.probe, num_random=args.random_bases)
    return 0


def _cmd_transfer(args: argparse.Namespace) -> int:
    import torch

    from randlabels.train.config import load_config
    from randlabels.train.run import default_run_dir, run_training
    from randlabels.transfer.pipeline import apply_transfer_, load_pretrained
    from randlabels.utils.io import atomic_write_json

    cfg = load_config(args.config, args.overrides)
    if args.mode != "scratch":
        for run in args.pretrained:
            load_pretrained(run)  # a clear error for unfinished runs, before any work
    out = (
        Path(args.out)
        if args.out
        else default_run_dir(cfg).with_name(
            default_run_dir(cfg).name + f"-{args.mode}-m{args.layers if args.layers else 'all'}"
        )
    )
    print(f"run directory: {out}")

    def hook(model, data):
        info = apply_transfer_(
            model,
            args.mode,
            args.pretrained,
            m=args.layers,
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        info["pretrained"] = [str(p) for p in args.pretrained]
        atomic_write_json(out / "transfer.json", info)
        print(f"transferred ({args.mode}): {', '.join(info['layers']) or 'nothing'}")

    summary = run_training(cfg, out, progress=not args.no_progress, model_hook=hook)
    if summary.get("skipped"):
        print("this run has already finished; nothing to do")
    _print_summary(summary)
    return 0


def _cmd_experiment(args: argparse.Namespace) -> int:
    from randlabels.experiments.runner import run_experiment

    results = run_experiment(
        args.name,
        args.profile,
        seeds=args.seeds,
        data_dir=args.data_dir,
        out=args.out,
        progress=not args.no_progress,
    )
    print(
        f"{args.name} ({args.profile}) finished in {results['wall_time_s']:.0f}s; "
        f"results in {Path(args.out) / args.name}"
    )
    for v in results.get("verdicts", []):
        print(f"  {v['claim']}: {v['verdict']:15s} {v['statistic']}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from randlabels.reproduce import ReproduceInterrupted, plan_lines, reproduce

    try:
        entries = reproduce(
            profile=args.profile,
            only=args.only,
            seeds=args.seeds,
            data_dir=args.data_dir,
            out=args.out,
            tensorboard=args.tensorboard,
            progress=not args.no_progress,
        )
    except ReproduceInterrupted as exc:
        print(f"\n{exc}. Run the same command again to continue.", file=sys.stderr)
        return 130
    for name, status, what in plan_lines(entries):
        print(f"  {name:5s} {status:8s} {what}".rstrip())
    print(f"report: {Path(args.out) / 'report.html'} and {Path(args.out) / 'report.md'}")
    failed = [e.name for e in entries if e.status == "failed"]
    if failed:
        print(f"error: {', '.join(failed)} failed (see above and plan.json)", file=sys.stderr)
        return 2
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from randlabels.report import write_report

    html_path, md_path = write_report(args.out_dir)
    print(f"wrote {html_path} and {md_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="randlabels",
        description="What do neural networks learn when trained with random labels?",
    )
    p.add_argument("--version", action="version", version=f"randlabels {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one run from a config file plus overrides")
    t.add_argument("--config", "-c", help="YAML or TOML config file")
    t.add_argument("--out", "-o", help="run directory (default: runs/<model>-<data>-<hash>)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("overrides", nargs="*", metavar="section.key=value")
    t.set_defaults(func=_cmd_train)

    d = sub.add_parser("data", help="prepare and inspect datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser("prepare", help="decode a dataset once into the cache")
    dp.add_argument("name", help="dataset name, e.g. cifar10")
    dp.add_argument("--source", help="archive, folder or URL (default: download)")
    dp.add_argument("--data-dir", help="where downloads go and datasets are looked for")
    dp.add_argument("--cache-dir", help="where decoded tensors are cached")
    dp.set_defaults(func=_cmd_data_prepare)
    di = dsub.add_parser("info", help="list prepared datasets")
    di.add_argument("--cache-dir")
    di.add_argument("--json", action="store_true")
    di.set_defaults(func=_cmd_data_info)

    al = sub.add_parser("align", help="alignment of trained layers with their inputs")
    al.add_argument("targets", nargs="+", help="run directories or weight files (pooled)")
    al.add_argument("--layer", action="append", help="layer name (repeatable), or 'all'")
    al.add_argument("--out", help="write align.json and figures here")
    al.add_argument("--probe", type=int, default=2000, help="training images for Sigma_x")
    al.add_argument("--random-bases", type=int, default=20)
    al.set_defaults(func=_cmd_align)

    tr = sub.add_parser(
        "transfer", help="train downstream from pre-trained runs (scratch/pretrained/...)"
    )
    tr.add_argument(
        "--from",
        dest="pretrained",
        action="append",
        default=[],
        help="a finished pre-trained run directory (repeat to pool, for covariance)",
    )
    tr.add_argument(
        "--mode", default="rescaled", choices=["scratch", "pretrained", "rescaled", "covariance"]
    )
    tr.add_argument(
        "--layers",
        type=int,
        help="transfer the first m layers (default: all but the head, which is always fresh)",
    )
    tr.add_argument("--config", "-c", help="the downstream run's config")
    tr.add_argument("--out", "-o")
    tr.add_argument("--no-progress", action="store_true")
    tr.add_argument("overrides", nargs="*", metavar="section.key=value")
    tr.set_defaults(func=_cmd_transfer)

    ex = sub.add_parser("experiment", help="run one experiment of the paper (E2, E3, E4a, ...)")
    ex.add_argument("name")
    ex.add_argument("--profile", default="quick", choices=["quick", "paper"])
    ex.add_argument("--seeds", type=int)
    ex.add_argument("--data-dir", help="where CIFAR-10 is (e.g. ../shared/data)")
    ex.add_argument("--out", default="results")
    ex.add_argument("--no-progress", action="store_true")
    ex.set_defaults(func=_cmd_experiment)

    rp = sub.add_parser(
        "reproduce", help="run every experiment (skipping what cannot run here), then the report"
    )
    rp.add_argument("--profile", default="quick", choices=["quick", "paper"])
    rp.add_argument(
        "--only", help="comma-separated experiments, e.g. E1,E4,E6a (E4 = E4a+E4b, E6 = E6a+E6t)"
    )
    rp.add_argument("--seeds", type=int, help="seeds per experiment (default: the profile's)")
    rp.add_argument("--data-dir", help="where CIFAR-10 is (without it: synthetic E4a only)")
    rp.add_argument("--out", default="results", help="output directory (default: results)")
    rp.add_argument(
        "--tensorboard", action="store_true", help="also write OUT/tensorboard/<run>/ scalars"
    )
    rp.add_argument("--no-progress", action="store_true", help="no per-run progress bars")
    rp.set_defaults(func=_cmd_reproduce)

    rep = sub.add_parser("report", help="write OUT_DIR/report.html and report.md")
    rep.add_argument("out_dir", help="an output directory of reproduce or experiment")
    rep.set_defaults(func=_cmd_report)

    lst = sub.add_parser("list", help="list models and datasets")
    lst.set_defaults(func=_cmd_list)

    demo = sub.add_parser("demo", help="offline demo: random labels on synthetic Gaussian data")
    demo.add_argument("--out", default="runs/demo", help="where the demo's runs go")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from randlabels.train.trainer import NonFiniteLossError, TrainingInterrupted

    try:
        return args.func(args)
    except TrainingInterrupted as exc:
        print(f"\n{exc}. Run the same command again to resume.", file=sys.stderr)
        return 130
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ValueError, OSError, RuntimeError) as exc:
        # Data, config, run-directory and model errors all carry a message for the user.
        if os.environ.get("RANDLABELS_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
