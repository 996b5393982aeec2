"""Command line: ``elcrec train | evaluate | recommend | intents | report | serve |
export | benchmark | tune | data``.

Errors in the input (data, config, ids) print one line naming the file, line
or field and exit with status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from elcrec.config import (
    BENCHMARKS,
    ConfigError,
    RunConfig,
    TrainConfig,
    choices,
    parse_overrides,
    preset,
)
from elcrec.data import DataError
from elcrec.models import REGISTRY, configure
from elcrec.runs import default_work

DEVICES = choices(TrainConfig, "device")


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train (or resume) a run and print its test metrics",
        description="Train ELCRec. With no arguments: the built-in synthetic "
        "data with planted intents.",
    )
    p.add_argument("--config", help="config.json/.toml of an earlier run (repeats it)")
    p.add_argument(
        "--preset",
        choices=["paper", "fast", "plus"],
        help="paper: the authors' settings for a benchmark (--data beauty|sports|toys|yelp); "
        "fast: the same, cheap; plus: ELCRec+ (tuned on validation)",
    )
    p.add_argument("--data", help="beauty, sports, toys, yelp, synthetic, or a file path")
    p.add_argument("--format", choices=["auto", "sequences", "pairs", "log"])
    p.add_argument("--data-dir", help="folder of the benchmark files (else $ELCREC_DATA_DIR)")
    p.add_argument("--user-col")
    p.add_argument("--item-col")
    p.add_argument("--time-col")
    p.add_argument("--kcore", type=int)
    p.add_argument("--drop-short-users", action="store_true", default=None)
    p.add_argument(
        "--model",
        choices=list(REGISTRY),
        help="a model of elcrec.models.REGISTRY (default ELCRec; ELCRec+ under --preset plus)",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--device", choices=DEVICES)
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any other option, e.g. --set model.alpha=1 train.lr=0.0005",
    )
    p.add_argument(
        "--run-dir",
        help="run folder (default $ELCREC_WORK/runs/<data>-<model>-seed<seed>; "
        "ELCREC_WORK defaults to ~/elcrec-work)",
    )
    p.add_argument("--no-progress", action="store_true")


def build_config(args) -> RunConfig:
    if args.config:
        cfg = RunConfig.load(args.config)
    elif args.preset:
        cfg = preset(args.preset, args.data or "beauty")
    else:
        cfg = RunConfig()
    if args.model:
        cfg = configure(cfg, args.model, args.preset)
    overrides = {}
    flags = {
        "data": "data.source",
        "format": "data.format",
        "data_dir": "data.data_dir",
        "user_col": "data.user_col",
        "item_col": "data.item_col",
        "time_col": "data.time_col",
        "kcore": "data.kcore",
        "drop_short_users": "data.drop_short_users",
        "seed": "train.seed",
        "epochs": "train.epochs",
        "patience": "train.patience",
        "device": "train.device",
    }
    for attr, dotted in flags.items():
        value = getattr(args, attr)
        if value is not None and not (attr == "data" and args.preset and not args.config):
            overrides[dotted] = value
    overrides.update(parse_overrides(args.set))
    return cfg.replace(**overrides)


def cmd_train(args) -> int:
    from elcrec.train import train

    cfg = build_config(args)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif args.config:
        run_dir = Path(args.config).parent
    else:
        stem = Path(cfg.data.source).stem.lower()
        run_dir = default_work() / "runs" / f"{stem}-{cfg.model.name}-seed{cfg.train.seed}"
    print(f"run folder: {run_dir}", file=sys.stderr)
    result = train(cfg, run_dir, progress=not args.no_progress)
    print(json.dumps(result, indent=2))
    return 0


def cmd_evaluate(args) -> int:
    import torch

    from elcrec.data import Split
    from elcrec.evaluate import evaluate
    from elcrec.inference import Recommender

    rec = Recommender.load(args.run, checkpoint=args.checkpoint)
    split = Split(rec.data, rec.cfg.data.max_len)
    mask = args.history_mask or rec.cfg.train.history_mask
    with torch.no_grad():
        metrics = evaluate(rec.model, split, args.stage, rec.cfg.train.eval_batch_size, mask)
    print(json.dumps({"stage": args.stage, "history_mask": mask, **metrics}, indent=2))
    return 0


def cmd_recommend(args) -> int:
    from elcrec.inference import Recommender

    rec = Recommender.load(args.run)
    if args.ann_ef:
        rec.use_ann(ef_search=args.ann_ef)
    exclude = not args.include_seen
    if args.users is not None:
        return _recommend_many_users(rec, args)
    if args.user is not None:
        try:
            result = rec.recommend_user(_maybe_int(args.user), args.k, exclude)
        except KeyError as e:
            raise DataError(f"--user: {e.args[0]} (not in {args.run}/data.json)") from None
        out = {"user": args.user, **result.to_dict()}
    else:
        if args.items_file:
            path = Path(args.items_file)
            try:
                tokens = path.read_text().split()
            except OSError as e:
                raise DataError(f"{path}: cannot read ({e.strerror})") from None
            if not tokens:
                raise DataError(f"{path}: empty; expected item ids separated by spaces or lines")
        else:
            tokens = args.items
        items = [_maybe_int(t) for t in tokens]
        result = rec.recommend(items, args.k, exclude)
        if len(result.unknown_items) == len(items):
            print(
                f"warning: none of the {len(items)} items is in the catalogue; "
                "recommending from an empty history",
                file=sys.stderr,
            )
        out = result.to_dict()
    print(json.dumps(out, indent=2))
    return 0


def _placement(args) -> dict:
    """Where the child runs of a grid or search execute (not what they compute)."""
    placement = {}
    if args.device:
        placement["train.device"] = args.device
    if args.data_dir:
        placement["data.data_dir"] = args.data_dir
    if args.threads:
        placement["train.threads"] = args.threads
    return placement


def cmd_benchmark(args) -> int:
    from elcrec import benchmark

    overrides = parse_overrides(args.set)
    placement = _placement(args)
    if args.results is None:
        paper = args.preset == "paper"
        args.results = "benchmarks/results" + ("" if paper else f"/grid_{args.preset}")
    cells = benchmark.grid(args.models, args.datasets, args.seeds)
    work = args.work or default_work() / "grid"
    if not args.tables_only:
        deadline = args.deadline_min * 60 if args.deadline_min else None
        counts = benchmark.run_grid(
            cells,
            work,
            args.preset,
            overrides,
            args.jobs,
            deadline,
            placement,
            summaries=args.summaries,
        )
        print(json.dumps(counts), file=sys.stderr)
    benchmark.sync_summaries(cells, work, args.summaries, args.preset)
    command = " ".join(["elcrec", *map(shlex.quote, sys.argv[1:])])
    header = f"# Benchmark grid, preset `{args.preset}`\n\nCommand: `{command}`"
    payload = benchmark.write_tables(args.summaries, args.results, args.preset, header)
    print(f"{len(payload['runs'])} finished runs; tables in {args.results}/table1.md")
    if benchmark.write_beyond(args.summaries, args.beyond_results):
        print(f"ELCRec / SASRec-CE / ELCRec+ in {args.beyond_results}/beyond.md")
    return 0


def cmd_tune(args) -> int:
    from elcrec import tune

    placement = _placement(args)
    out = Path(args.out or f"benchmarks/tune/{args.dataset}")
    budget = {
        "trials": args.trials,
        "max_epochs_per_trial": args.epochs,
        "patience": args.patience,
        "search_seed": args.search_seed,
        "train_seed": args.seed,
    }
    if not args.tables_only:
        deadline = args.deadline_min * 60 if args.deadline_min else None
        counts = tune.run_tune(
            preset("fast", args.dataset),
            out,
            args.trials,
            args.epochs,
            args.patience,
            args.search_seed,
            args.seed,
            args.jobs,
            deadline,
            placement,
            tune.load_search(args.space),
        )
        print(json.dumps(counts), file=sys.stderr)
    # the command that runs (or resumes) the search, even when only the tables are rewritten
    argv = [a for a in sys.argv[1:] if a != "--tables-only"]
    command = " ".join(["elcrec", *map(shlex.quote, argv)])
    header = f"# Tuning ELCRec+ on {args.dataset} (validation only)\n\nCommand: `{command}`"
    if args.tables_only and (out / "best.json").exists():  # keep the search's command, budget
        previous = json.loads((out / "best.json").read_text())
        header, budget = previous["header"], previous["budget"]
    payload = tune.write_results(out, header, budget)
    print(json.dumps({k: payload[k] for k in ("best_trial", "options", "valid_NDCG@20")}))
    return 0


def cmd_intents(args) -> int:
    from elcrec.inference import Recommender

    rec = Recommender.load(args.run)
    out = Path(args.out or Path(args.run) / "intents")
    users, intents = rec.export_intents(out, with_repr=args.with_repr, top_items=args.top_items)
    used = int((intents["users"] > 0).sum())
    print(
        f"{len(users)} users in {used} of {len(intents)} intents; "
        f"wrote {out}/users.{{parquet,csv}} and {out}/intents.{{parquet,csv}}"
    )
    return 0


def cmd_report(args) -> int:
    from elcrec.report import write_report

    print(f"wrote {write_report(args.run, args.out, args.tsne_users)}")
    return 0


def cmd_serve(args) -> int:
    from elcrec.serve import serve

    print(f"serving {args.run} on http://{args.host}:{args.port}", file=sys.stderr)
    serve(args.run, args.host, args.port, args.threads, args.ann_ef)
    return 0


def _recommend_many_users(rec, args) -> int:
    if not args.out:
        raise ConfigError("--users needs --out FILE.parquet")
    users = None
    if args.users != "all":
        path = Path(args.users)
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror})") from None
        users = []
        for n, line in enumerate(lines, 1):
            token = line.strip()
            if not token:
                continue
            if rec.user_row(_maybe_int(token)) is None:
                raise DataError(f"{path}:{n}: unknown user {token!r} (not in {args.run}/data.json)")
            users.append(_maybe_int(token))
        if not users:
            raise DataError(f"{path}: no user ids; expected one per line")
    rows = rec.recommend_users_to_parquet(users, args.out, args.k, not args.include_seen)
    print(f"wrote {rows} rows (user, rank, item, score, intent) to {args.out}")
    return 0


def cmd_export(args) -> int:
    from elcrec.inference import Recommender

    path = Recommender.load(args.run).export(args.out or Path(args.run) / "export")
    print(f"wrote {path} (TorchScript), {path.with_suffix('.pt2')} (torch.export), items.json")
    return 0


def cmd_data(args) -> int:
    from elcrec.config import DataConfig
    from elcrec.data import load

    cfg = DataConfig(source=args.source, format=args.format, data_dir=args.data_dir)
    print(json.dumps(load(cfg).stats(), indent=2))
    return 0


def _maybe_int(token):
    if isinstance(token, str):
        try:
            return int(token)
        except ValueError:
            return token
    return token


def _add_ann(p) -> None:
    p.add_argument(
        "--ann-ef",
        type=int,
        default=0,
        help="approximate search: HNSW with this efSearch (0 = exact)",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elcrec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)

    p = sub.add_parser("evaluate", help="full-ranking metrics of a trained run")
    p.add_argument("run")
    p.add_argument("--stage", choices=["valid", "test"], default="test")
    p.add_argument("--history-mask", choices=choices(TrainConfig, "history_mask"))
    p.add_argument("--checkpoint", default="best.pt")

    p = sub.add_parser("recommend", help="top-K items and the intent for a user or a sequence")
    p.add_argument("run")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a known user id (original id)")
    who.add_argument("--items", nargs="+", help="an item sequence, oldest first (original ids)")
    who.add_argument("--items-file", help="a file of item ids, oldest first")
    who.add_argument("--users", help="a file of user ids (one per line) or 'all': batch to --out")
    p.add_argument("--out", help="Parquet file for --users (user, rank, item, score, intent)")
    _add_ann(p)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--include-seen", action="store_true", help="do not exclude the input items")

    p = sub.add_parser(
        "benchmark",
        help="run a resumable grid of models x datasets x seeds and write the tables",
        description="Finished cells are skipped and interrupted ones resume, so a grid "
        "can be run piece by piece.  Tables: <results>/table1.{csv,md,json}, ablation.csv.",
    )
    p.add_argument(
        "--models",
        nargs="+",
        default=["ELCRec"],
        metavar="MODEL",
        choices=list(REGISTRY),
        help=f"models of elcrec.models.REGISTRY: {' '.join(REGISTRY)} "
        "(ELCRec+ under --preset plus)",
    )
    p.add_argument("--datasets", nargs="+", default=["beauty"], choices=sorted(BENCHMARKS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--preset", choices=["paper", "fast", "plus"], default="paper")
    p.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument(
        "--work",
        help="folder of the cells' run folders (default $ELCREC_WORK/grid, outside the tree)",
    )
    p.add_argument(
        "--summaries",
        default="benchmarks/grid",
        help="folder of the cells' summaries (config, test result, per-user ranks), "
        "which the tables are built from and which is committed",
    )
    p.add_argument(
        "--results",
        help="tables folder (default benchmarks/results for the paper preset, "
        "benchmarks/results/grid_<preset> otherwise, so Table 1 is never overwritten)",
    )
    p.add_argument(
        "--beyond-results",
        default="benchmarks/results",
        help="folder of beyond.{csv,md}: ELCRec (paper), SASRec-CE (fast), ELCRec+ (plus)",
    )
    p.add_argument("--jobs", type=int, default=1, help="cells run at once")
    p.add_argument("--threads", type=int, default=0, help="torch threads per cell")
    p.add_argument(
        "--deadline-min",
        type=float,
        default=0,
        help="interrupt the cells after this many minutes (they resume later)",
    )
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--data-dir")
    p.add_argument("--tables-only", action="store_true", help="only rewrite the tables")

    p = sub.add_parser(
        "tune",
        help="search ELCRec+ options on validation only (resumable random search)",
        description="Trial i draws each option of elcrec.tune.SPACE from a seeded RNG "
        "(trial 0 = elcrec.tune.START); each trial is a run folder <out>/trial<i> "
        "that never evaluates the test set.  Writes <out>/tune.{csv,md} and best.json.",
    )
    p.add_argument("--dataset", default="beauty", choices=sorted(BENCHMARKS))
    # Defaults: the budget of the committed Beauty search.
    p.add_argument("--trials", type=int, default=12, help="budget: number of trials")
    p.add_argument("--epochs", type=int, default=14, help="budget: epochs per trial at most")
    p.add_argument("--patience", type=int, default=3, help="early stopping inside a trial")
    p.add_argument("--seed", type=int, default=1, help="training seed of every trial")
    p.add_argument("--search-seed", type=int, default=0)
    p.add_argument(
        "--space",
        help='JSON search definition {"space": {option: [values]}, "start": {...}, '
        '"fixed": {...}} (default: elcrec.tune.SPACE and START)',
    )
    p.add_argument("--out", help="trials folder (default benchmarks/tune/<dataset>)")
    p.add_argument("--jobs", type=int, default=1, help="trials run at once")
    p.add_argument("--threads", type=int, default=0, help="torch threads per trial")
    p.add_argument("--deadline-min", type=float, default=0)
    p.add_argument("--device", choices=DEVICES, help="where the trials run")
    p.add_argument("--data-dir")
    p.add_argument("--tables-only", action="store_true", help="only rewrite tune.csv/best.json")

    p = sub.add_parser("intents", help="export every user's intent and every intent's items")
    p.add_argument("run")
    p.add_argument("--out", help="output folder (default <run>/intents)")
    p.add_argument("--with-repr", action="store_true", help="add the pooled representations")
    p.add_argument("--top-items", type=int, default=10, help="typical items listed per intent")

    p = sub.add_parser("report", help="one self-contained HTML page: metrics, curves, intents")
    p.add_argument("run")
    p.add_argument("--out", help="HTML file (default <run>/report.html)")
    p.add_argument("--tsne-users", type=int, default=3000, help="users drawn in the t-SNE")

    p = sub.add_parser("serve", help="HTTP service: recommendations and intents (FastAPI)")
    p.add_argument("run")
    p.add_argument("--host", default="127.0.0.1", help="default: this machine only")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1, help="torch threads per request")
    _add_ann(p)

    p = sub.add_parser(
        "export", help="the scorer as TorchScript and torch.export (runs with torch alone)"
    )
    p.add_argument("run")
    p.add_argument("--out", help="output folder (default <run>/export)")

    p = sub.add_parser("data", help="load a data source and print its statistics")
    p.add_argument("source")
    p.add_argument("--format", default="auto", choices=["auto", "sequences", "pairs", "log"])
    p.add_argument("--data-dir")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    handler = {
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "recommend": cmd_recommend,
        "data": cmd_data,
        "benchmark": cmd_benchmark,
        "tune": cmd_tune,
        "intents": cmd_intents,
        "report": cmd_report,
        "serve": cmd_serve,
        "export": cmd_export,
    }[args.command]
    if args.command != "serve":  # uvicorn handles its own signals
        # `kill` (SIGTERM) stops as Ctrl-C does: a run keeps its last finished
        # epoch, a grid or search stops its children.  Also what the grid uses
        # to stop cells, since a shell's background jobs ignore SIGINT.
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return handler(args)
    except (DataError, ConfigError, FileNotFoundError, ValueError) as e:
        print(f"elcrec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
