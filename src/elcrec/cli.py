"""Command line: ``elcrec train | evaluate | recommend | intents | report | serve |
export | benchmark | tune | data``.

Errors in the input (data, config, ids) print one line naming the file, line
or field and exit with status 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from elcrec import benchmark, distributed, tune
from elcrec.config import (
    BENCHMARKS,
    ConfigError,
    DataConfig,
    RunConfig,
    TrainConfig,
    choices,
    parse_overrides,
    preset,
)
from elcrec.data import DataError, Split, load
from elcrec.evaluate import evaluate
from elcrec.inference import Recommender
from elcrec.models import REGISTRY, configure
from elcrec.report import write_report
from elcrec.runs import default_work
from elcrec.train import train

DEVICES = choices(TrainConfig, "device")
STARTED = time.monotonic()
TABLES_RESERVE_S = 10.0  # stopping the trials and writing a search's tables

# The flags of every command that loads data (defined once), and the options they set.
DATA_FLAGS = {
    "format": "data.format",
    "data_dir": "data.data_dir",
    "user_col": "data.user_col",
    "item_col": "data.item_col",
    "time_col": "data.time_col",
    "kcore": "data.kcore",
    "drop_short_users": "data.drop_short_users",
}
# Where and how long a run trains.
RUNTIME_FLAGS = {
    "threads": "train.threads",
    "device": "train.device",
    "epochs": "train.epochs",
    "patience": "train.patience",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
}


def add_data_flags(p, source: bool = True) -> None:
    if source:
        p.add_argument(
            "--data", help="beauty, sports, toys, yelp, synthetic, or a file (default synthetic)"
        )
    p.add_argument(
        "--format",
        choices=choices(DataConfig, "format"),
        help="file format (default auto: found from the suffix or a sample of lines)",
    )
    p.add_argument("--data-dir", help="folder of the benchmark files (else $ELCREC_DATA_DIR)")
    p.add_argument("--user-col", help="log column of user ids (default user_id)")
    p.add_argument("--item-col", help="log column of item ids (default item_id)")
    p.add_argument("--time-col", help="log column of times (default timestamp)")
    p.add_argument("--kcore", type=int, help="keep users and items with at least K interactions")
    p.add_argument(
        "--drop-short-users",
        action="store_true",
        default=None,
        help="drop users with fewer than 3 items (else an error)",
    )


def add_runtime_flags(p) -> None:
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--device", choices=DEVICES)
    p.add_argument("--epochs", type=int, help="at most this many epochs")
    p.add_argument("--patience", type=int, help="stop after this many epochs without progress")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")


def flag_overrides(args, flags: dict[str, str]) -> dict:
    """The options the given command-line flags set (those given)."""
    return {
        dotted: getattr(args, attr)
        for attr, dotted in flags.items()
        if getattr(args, attr, None) is not None
    }


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
        help="paper: the authors' settings (for a benchmark; other data take Beauty's); "
        "fast: the same, cheap; plus: ELCRec+ (chosen on validation); fast-v1, plus-v1: "
        "those two as they trained before their speed-ups; or a preset file written by "
        "elcrec tune --data FILE",
    )
    add_data_flags(p)
    p.add_argument(
        "--model",
        choices=list(REGISTRY),
        help="a model of elcrec.models.REGISTRY (default ELCRec; ELCRec+ under --preset plus)",
    )
    p.add_argument("--seed", type=int)
    add_runtime_flags(p)
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
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar and no per-epoch lines"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON, not a table")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes (ranks) to train with, launched by torchrun (gloo on CPU, NCCL on "
        "CUDA); the same as torchrun --nproc_per_node N -m elcrec.cli train ...",
    )


def build_config(args) -> RunConfig:
    if args.config:
        cfg = RunConfig.load(args.config)
    elif args.preset:
        cfg = preset(args.preset, args.data or "beauty")
    else:
        cfg = RunConfig()
    if args.model:
        cfg = configure(cfg, args.model, args.preset)
    overrides = flag_overrides(args, {**DATA_FLAGS, **RUNTIME_FLAGS, "seed": "train.seed"})
    if args.data is not None and (args.config or not args.preset):
        overrides["data.source"] = args.data  # (a preset has taken it already)
    overrides.update(parse_overrides(args.set))
    return cfg.replace(**overrides)


def cmd_train(args) -> int:
    if args.nproc > 1:  # the same command under PyTorch's launcher, one process per rank
        return launch_torchrun(args.nproc, sys.argv[1:])
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
    # The whole result is test_metrics.json in the run folder; a person reads the table.
    if distributed.rank() == 0:
        print(json.dumps(result, indent=2) if args.json else summary_table(result, run_dir))
    return 0


def launch_torchrun(nproc: int, argv: list[str]) -> int:
    """``torchrun --nproc_per_node N -m elcrec.cli ARGV`` without ``--nproc``."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd.append(f"--nproc_per_node={nproc}")
    # One machine: gloo over loopback unless told otherwise (its default, the
    # address the host name resolves to, is not reachable everywhere).
    env = {"GLOO_SOCKET_IFNAME": "lo", **os.environ}
    return subprocess.run([*cmd, "-m", "elcrec.cli", *rest], env=env).returncode


def summary_table(result: dict, run_dir: Path) -> str:
    """A few lines a person reads: the test metrics, and the intents' NMI
    beside a random assignment's when the data planted intents."""
    test = result.get("test")
    if not test:
        return "no test metrics (train.evaluate_test = false)"
    names = ("HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR")
    lines = [
        f"test ({result['history_mask']} history masking), best epoch {result['best_epoch']} "
        f"of {result['epochs_run']}, {result['wall_s']:.0f} s on {result['device']}:",
        "  " + "  ".join(f"{n:>7}" for n in names),
        "  " + "  ".join(f"{test[n]:7.4f}" for n in names),
    ]
    intents = result.get("intents")
    if intents:
        line = (
            f"intents: {intents['used_intents']} used, largest share "
            f"{intents['largest_share']:.3f}, effective {intents['effective_intents']:.1f}"
        )
        if "nmi" in intents:
            nmi, random = intents["nmi"], intents["random_nmi"]
            line += f"; NMI with the planted intents {nmi:.3f} (random {random:.3f})"
        lines.append(line)
    lines.append(f"all results: {run_dir / 'test_metrics.json'}")
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    rec = Recommender.load(args.run, checkpoint=args.checkpoint)
    split = Split(rec.data, rec.cfg.data.max_len)
    mask = args.history_mask or rec.cfg.train.history_mask
    with torch.no_grad():
        metrics = evaluate(rec.model, split, args.stage, rec.cfg.train.eval_batch_size, mask)
    print(json.dumps({"stage": args.stage, "history_mask": mask, **metrics}, indent=2))
    return 0


def cmd_recommend(args) -> int:
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
            raise DataError(f"--user: {e.args[0]} (not a user of {args.run})") from None
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
    data = flag_overrides(args, DATA_FLAGS)
    data.pop("data.data_dir", None)  # where the files are: placement
    overrides = {**data, **parse_overrides(args.set)}
    placement = _placement(args)
    if args.results is None:
        args.results = f"benchmarks/results/grid_{args.preset}"
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
        print(f"{benchmark.beyond_names()} in {args.beyond_results}/beyond.md")
    return 0


def cmd_tune(args) -> int:
    placement = _placement(args)
    data = flag_overrides(args, DATA_FLAGS)
    data.pop("data.data_dir", None)
    source = args.data or args.dataset
    own = args.data is not None and args.data.lower() not in BENCHMARKS
    default_out = default_work() / "tune" / Path(source).stem if own else Path("benchmarks/tune")
    out = Path(args.out or (default_out if own else default_out / args.dataset))
    deadline_min = args.minutes or args.deadline_min
    budget = {
        "trials": args.trials,
        "max_epochs_per_trial": args.epochs,
        "patience": args.patience,
        "search_seed": args.search_seed,
        "train_seed": args.seed,
        **({"minutes": args.minutes} if args.minutes else {}),
        **({"prune_after": args.prune_after} if args.prune_after else {}),
    }
    # Own data: the search behind the plus preset, on this data's validation.
    search = tune.load_search(args.space) if args.space or not own else tune.PLUS_SEARCH
    deadline_s = deadline_min * 60 if deadline_min else None
    if args.minutes:  # the whole command inside the budget: start-up so far, tables after
        deadline_s -= time.monotonic() - STARTED + TABLES_RESERVE_S
    if not args.tables_only:
        counts = tune.run_tune(
            preset("fast", source).replace(**data),
            out,
            args.trials,
            args.epochs,
            args.patience,
            args.search_seed,
            args.seed,
            args.jobs,
            deadline_s,
            placement,
            search,
            prune_after=args.prune_after,
        )
        print(json.dumps(counts), file=sys.stderr)
    # the command that runs (or resumes) the search, even when only the tables are rewritten
    argv = [a for a in sys.argv[1:] if a != "--tables-only"]
    command = " ".join(["elcrec", *map(shlex.quote, argv)])
    command_line = f"Command: `{command}`"
    if args.tables_only and (out / "best.json").exists():  # keep the search's command, budget
        previous = json.loads((out / "best.json").read_text())
        command_line = tune.saved_command_line(previous["header"]) or command_line
        budget = previous["budget"]
    header = tune.header(out, source, command_line)
    # Under a wall-clock budget, trials the deadline stopped count with their best epoch.
    payload = tune.write_results(out, header, budget, finished_only=not args.minutes)
    print(json.dumps({k: payload[k] for k in ("best_trial", "options", "valid_NDCG@20")}))
    if payload["options"] is not None and (own or args.minutes):
        path = tune.write_preset(out, payload, command)
        print(f"preset file: {path} (elcrec train --data {source} --preset {path})")
    return 0


def cmd_intents(args) -> int:
    rec = Recommender.load(args.run)
    out = Path(args.out or Path(args.run) / "intents")
    users, intents = rec.export_intents(
        out, with_repr=args.with_repr, top_items=args.top_items, k=args.k, seed=args.seed
    )
    used = int((intents["users"] > 0).sum())
    source = intents["source"].iloc[0]
    print(
        f"{len(users)} users in {used} of {len(intents)} intents ({source}); "
        f"wrote {out}/users.{{parquet,csv}} and {out}/intents.{{parquet,csv}}"
    )
    return 0


def cmd_report(args) -> int:
    print(f"wrote {write_report(args.run, args.out, args.tsne_users)}")
    return 0


def cmd_serve(args) -> int:
    from elcrec.serve import serve  # fastapi and uvicorn: loaded only when asked for

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
                raise DataError(f"{path}:{n}: unknown user {token!r} (not a user of {args.run})")
            users.append(_maybe_int(token))
        if not users:
            raise DataError(f"{path}: no user ids; expected one per line")
    rows = rec.recommend_users_to_parquet(users, args.out, args.k, not args.include_seen)
    print(f"wrote {rows} rows (user, rank, item, score, intent) to {args.out}")
    return 0


def cmd_export(args) -> int:
    path = Recommender.load(args.run).export(args.out or Path(args.run) / "export")
    print(f"wrote {path} (TorchScript), {path.with_suffix('.pt2')} (torch.export), items.json")
    return 0


def cmd_data(args) -> int:
    overrides = {"data.source": args.source, **flag_overrides(args, DATA_FLAGS)}
    data = load(RunConfig().replace(**overrides).data)
    print(json.dumps(data.stats(), indent=2))
    if args.export:
        rows = data.to_log(args.export)
        print(f"wrote {rows} rows (user_id, item_id, timestamp) to {args.export}", file=sys.stderr)
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
    p.add_argument(
        "--preset", choices=["paper", "fast", "plus", "fast-v1", "plus-v1"], default="paper"
    )
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
        help="tables folder (default benchmarks/results/grid_<preset>; the headline "
        "tables in benchmarks/results are built from the grids by benchmarks/table1_fast.py)",
    )
    p.add_argument(
        "--beyond-results",
        default="benchmarks/results",
        help="folder of beyond.{csv,md}: the models beyond the paper, each under its preset",
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
    add_data_flags(p, source=False)
    p.add_argument("--tables-only", action="store_true", help="only rewrite the tables")

    p = sub.add_parser(
        "tune",
        help="search a model's options on validation only (ELCRec+ unless --space fixes "
        "another; resumable random search)",
        description="Trial i draws each option of elcrec.tune.SPACE from a seeded RNG "
        "(trial 0 = elcrec.tune.START); each trial is a run folder <out>/trial<i> "
        "that never evaluates the test set.  Writes <out>/tune.{csv,md} and best.json.",
    )
    p.add_argument("--dataset", default="beauty", choices=sorted(BENCHMARKS))
    add_data_flags(p)  # --data FILE: search on that file's own validation set
    p.add_argument(
        "--minutes",
        type=float,
        help="wall-clock budget: stop the search after this many minutes and choose "
        "among the trials so far (then also writes <out>/preset.json)",
    )
    # Defaults: the budget of the committed Beauty search.
    p.add_argument("--trials", type=int, default=12, help="budget: number of trials")
    p.add_argument("--epochs", type=int, default=14, help="budget: epochs per trial at most")
    p.add_argument("--patience", type=int, default=3, help="early stopping inside a trial")
    p.add_argument(
        "--prune-after",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="budget: from this epoch on, stop a trial whose best validation so far is "
        "below the median of the other trials' over as many epochs (0: never)",
    )
    p.add_argument("--seed", type=int, default=1, help="training seed of every trial")
    p.add_argument("--search-seed", type=int, default=0)
    p.add_argument(
        "--space",
        help='JSON search definition {"space": {option: [values]}, "start": {...}, '
        '"fixed": {...}} (default: elcrec.tune.SPACE and START)',
    )
    p.add_argument(
        "--out",
        help="trials folder (default benchmarks/tune/<dataset>; for --data FILE, "
        "$ELCREC_WORK/tune/<file name>)",
    )
    p.add_argument("--jobs", type=int, default=1, help="trials run at once")
    p.add_argument("--threads", type=int, default=0, help="torch threads per trial")
    p.add_argument("--deadline-min", type=float, default=0)
    p.add_argument("--device", choices=DEVICES, help="where the trials run")
    p.add_argument(
        "--tables-only",
        action="store_true",
        help="only rewrite tune.{csv,md} and best.json (keeps the search's command and budget)",
    )

    p = sub.add_parser("intents", help="export every user's intent and every intent's items")
    p.add_argument("run")
    p.add_argument("--out", help="output folder (default <run>/intents)")
    p.add_argument("--with-repr", action="store_true", help="add the pooled representations")
    p.add_argument("--top-items", type=int, default=10, help="typical items listed per intent")
    p.add_argument(
        "--k",
        type=int,
        help="fit K intents to the trained users by k-means instead of the learned "
        "ones (a model that learned none: default model.n_clusters)",
    )
    p.add_argument("--seed", type=int, default=0, help="k-means seed (with --k)")

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
    p.add_argument("source", help="beauty, sports, toys, yelp, synthetic, or a file")
    add_data_flags(p, source=False)
    p.add_argument("--export", help="also write it as a CSV log (user_id, item_id, timestamp)")
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
