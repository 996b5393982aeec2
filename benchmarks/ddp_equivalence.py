"""Two processes with half a batch each compute what one process computes
with the whole batch (torch.distributed, gloo on CPU).

One training step, dropout off: one process on a global batch of B rows
against 2 gloo ranks with B/2 rows each (their shares of the same batch,
as the trainer cuts them), the model wrapped in DistributedDataParallel.  The
ranks' loss terms, averaged, and their (DDP-averaged) gradients must equal
the one process's: every loss term and every parameter.  That holds only if
the contrastive negatives are gathered across ranks with gradients flowing
back to every rank and each mean is taken over the global batch
(elcrec.distributed).

    python benchmarks/ddp_equivalence.py

Writes benchmarks/results/ddp_equivalence.{json,md} (the one-step part of the
multi-process checks; the others are listed as not yet measured).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

from elcrec import RunConfig  # noqa: E402
from elcrec.data import Split, pad_left, synthetic  # noqa: E402
from elcrec.evaluate import rank_all  # noqa: E402
from elcrec.models import Batch, build_model  # noqa: E402
from elcrec.runs import RunFolder, default_work  # noqa: E402

CASES = {
    # the paper's BCE, the cluster loss pulling to all centers, both contrasts
    "bce_full": {"model.loss": "bce"},
    # a softmax over the catalogue, cosine contrasts, Sinkhorn-balanced pull
    "ce_cosine_sinkhorn": {
        "model.loss": "ce",
        "model.cl_similarity": "cosine",
        "model.cluster_pull": "sinkhorn",
        "model.n_layers": 2,
    },
}
TOLERANCE = 1e-5
BATCH = 64


def config(case: str) -> RunConfig:
    return RunConfig().replace(
        **{"model.dropout": 0.0, "model.n_clusters": 8, "data.max_len": 20, **CASES[case]}
    )


def global_batch(cfg: RunConfig, seed: int = 0) -> Batch:
    """A batch as the trainer builds one: inputs, targets, negatives, two views."""
    data = synthetic(300, 120, 4, seed=seed)
    split = Split(data, cfg.data.max_len)
    rng = np.random.default_rng(seed)
    samples = split.train_batches(BATCH, seed, 0, 0, "users")[0]
    users = samples.users
    own = split.train_inputs(samples)
    pos = split.train_targets(samples, own.shape[1])
    neg = split.sample_negatives(users, pos, rng)
    ratios = (0.2, 0.7, 0.2)
    v1, v2 = (split.train_views(samples, rng, ratios) for _ in range(2))
    w = max(v1.shape[1], v2.shape[1])
    views = np.concatenate([pad_left(v1, w), pad_left(v2, w)])
    return Batch(*(torch.from_numpy(x) for x in (own, pos, neg, views))), data.n_items


def one_step(model, batch: Batch) -> tuple[dict, dict]:
    out = model(batch)
    out["total"].backward()
    inner = getattr(model, "module", model)
    grads = {n: p.grad.clone() for n, p in inner.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in out.items()}, grads


def rank_share(batch: Batch, rank: int, world: int) -> Batch:
    """This rank's rows (the trainer's cut: contiguous, np.array_split)."""
    n = batch.items.shape[0]
    mine = torch.from_numpy(np.array_split(np.arange(n), world)[rank])
    views = torch.cat([batch.views[mine], batch.views[n + mine]])
    return Batch(batch.items[mine], batch.pos[mine], batch.neg[mine], views)


def local_gradient_gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The usual bug, for the test to catch: other ranks' rows gathered without
    gradients (dist.all_gather), so each rank's backward sees its own slice only."""
    world, rank = dist.get_world_size(), dist.get_rank()
    parts = [torch.zeros_like(x) for _ in range(world)]
    dist.all_gather(parts, x.detach())
    parts[rank] = x
    return torch.cat(parts), rank * x.shape[0]


def _worker(
    rank: int, world: int, port: int, case: str, out_path: str, broken: bool = False
) -> None:
    if broken:
        import elcrec.distributed

        elcrec.distributed.gather = local_gradient_gather
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    cfg = config(case)
    batch, n_items = global_batch(cfg)
    torch.manual_seed(0)
    model = build_model(n_items, cfg.data.max_len, cfg.model)
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    losses, grads = one_step(ddp, rank_share(batch, rank, world))
    for value in losses.values():  # the ranks' terms, averaged (each is rescaled for it)
        dist.all_reduce(value)
        value /= world
    if rank == 0:
        torch.save({"losses": losses, "grads": grads}, out_path)
    # DDP's reducer goes before its process group, and no rank leaves while
    # another still talks to it (otherwise a rank can abort at exit:
    # "terminate called without an active exception", seen under load)
    del ddp
    dist.barrier()
    dist.destroy_process_group()


def _evaluate_worker(rank: int, world: int, port: int, out_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model, split = _evaluated()
    scored = []

    def queries(items):  # the users this rank scores itself
        scored.append(len(items))
        return model.user_vectors(items)

    ranks = rank_all(model, split, "test", batch_size=64, queries=queries)
    np.save(f"{out_path}.{rank}.npy", np.array([sum(scored)]))
    if rank == 0:
        np.save(out_path, ranks)
    dist.barrier()
    dist.destroy_process_group()


def _evaluated():
    cfg = config("bce_full")
    data = synthetic(300, 120, 4, seed=0)
    torch.manual_seed(0)
    return build_model(data.n_items, cfg.data.max_len, cfg.model), Split(data, cfg.data.max_len)


def compare_evaluation(world: int = 2) -> dict:
    """Every user's test rank from ``world`` ranks sharing the users, against one process."""
    model, split = _evaluated()
    single = rank_all(model, split, "test", batch_size=64)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ranks.npy")
        spawn(_evaluate_worker, (path,), world)
        shared = np.load(path)
        scored = [int(np.load(f"{path}.{r}.npy")[0]) for r in range(world)]
    return {
        "users": len(single),
        "identical_ranks": bool(np.array_equal(single, shared)),
        "users_scored_per_rank": scored,
    }


def spawn(worker, args: tuple, world: int, attempts: int = 3) -> None:
    """Run ``worker(rank, *args)`` on ``world`` processes.  A process group that
    fails to form (gloo's connection setup on loopback, seen to fail now and
    then in this sandbox under load) is tried again on a fresh port; a wrong
    result is not retried, it fails the comparison."""
    for attempt in range(attempts):
        try:
            mp.spawn(worker, args=(world, free_port(), *args), nprocs=world, join=True)
            return
        except (mp.ProcessExitedException, mp.ProcessRaisedException):
            if attempt == attempts - 1:
                raise


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compare(case: str, world: int = 2, broken: bool = False) -> dict:
    cfg = config(case)
    batch, n_items = global_batch(cfg)
    torch.manual_seed(0)
    single = build_model(n_items, cfg.data.max_len, cfg.model)
    losses, grads = one_step(single, batch)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "ranks.pt")
        spawn(_worker, (case, path, broken), world)
        ranks = torch.load(path, weights_only=True)
    loss_diff = {k: float((ranks["losses"][k] - v).abs()) for k, v in losses.items()}
    grad_diff = {n: float((ranks["grads"][n] - g).abs().max()) for n, g in grads.items()}
    return {
        "case": case,
        "options": CASES[case],
        "world_size": world,
        "global_batch": BATCH,
        "losses_one_process": {k: float(v) for k, v in losses.items()},
        "abs_loss_diff": loss_diff,
        "max_abs_loss_diff": max(loss_diff.values()),
        "max_abs_grad_diff": max(grad_diff.values()),
        "worst_grad": max(grad_diff, key=grad_diff.get),
        "parameters_compared": len(grads),
        "grads_only_one_side": sorted(set(grads) ^ set(ranks["grads"])),
    }


# --------------------------------------------------------------------------- #
# Whole runs: 2 ranks against one process; a rank killed and restarted
# --------------------------------------------------------------------------- #
RUN = {
    "data.synthetic_users": 2000,
    "data.synthetic_items": 1000,
    "train.epochs": 12,
    "train.patience": 4,
    "train.device": "cpu",
    "train.threads": 1,
}


def elcrec(args: list[str], nproc: int = 1, extra: list[str] = ()) -> subprocess.Popen:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    launcher.append(f"--nproc_per_node={nproc}")
    cmd = [*(launcher + list(extra) if nproc > 1 else [sys.executable]), "-m", "elcrec.cli"]
    # gloo on this one machine talks over loopback (its default, the address
    # the host name resolves to, is not always reachable in a sandbox)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    return subprocess.Popen(
        [*cmd, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # (so that a hung launcher and its workers can be killed)
    )


def finish(proc: subprocess.Popen, timeout: float = 1800) -> None:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"no result after {timeout:.0f} s (a hung process group?)") from None
    if proc.returncode != 0:
        raise RuntimeError(err[-3000:])


def test_metrics(run: Path) -> dict:
    return json.loads((run / "test_metrics.json").read_text())["test"]


def whole_runs(work: Path, seeds=(1, 2, 3)) -> dict:
    """Test metrics of one-process runs and of 2-rank runs, one per seed; the
    difference of their mean NDCG@20 against its standard error (Welch)."""
    cfg = RunConfig().replace(**RUN)
    cfg.save(work / "config.json")
    out: dict = {"metrics_1proc_seeds": {}, "metrics_2rank_seeds": {}}
    for nproc, key in ((1, "metrics_1proc_seeds"), (2, "metrics_2rank_seeds")):
        for seed in seeds:
            run = work / f"nproc{nproc}_seed{seed}"
            if not (run / "test_metrics.json").exists():  # (kept: a rerun resumes)
                args = ["train", "--config", work / "config.json", "--seed", seed]
                finish(elcrec([str(a) for a in [*args, "--run-dir", run]], nproc))
            out[key][seed] = test_metrics(run)
    out["metrics_2rank"] = out["metrics_2rank_seeds"][seeds[0]]
    one, two = (
        np.array([m["NDCG@20"] for m in out[k].values()])
        for k in ("metrics_1proc_seeds", "metrics_2rank_seeds")
    )
    se = float(np.sqrt(one.var(ddof=1) / len(one) + two.var(ddof=1) / len(two)))
    diff = float(two.mean() - one.mean())
    out["ndcg20_mean_difference"] = {"2rank_minus_1proc": diff, "standard_error": se}
    # the same distribution: the means differ by less than two standard errors
    out["within_spread"] = abs(diff) <= 2 * se
    return out


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return sorted(out)


def elastic_resume(work: Path, attempts: int = 3) -> dict:
    """``elastic_attempt`` until one finishes (a process group that never
    forms, which happens here now and then, hangs; it is killed after 10
    minutes and the attempt made again in fresh folders)."""
    errors = []
    for attempt in range(attempts):
        try:
            return {**elastic_attempt(work / f"elastic{attempt}"), "failed_attempts": errors}
        except RuntimeError as e:
            errors.append(str(e)[-500:])
            print(f"elastic attempt {attempt} failed: {errors[-1]}", file=sys.stderr, flush=True)
    return {"elastic_resume_identical": None, "failed_attempts": errors}


def elastic_attempt(work: Path) -> dict:
    """A 2-rank run whose rank is killed after its second epoch, restarted by
    torchrun (--max-restarts 1) from the last checkpoint, against one never
    interrupted: the same test metrics and curve?"""
    work.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig().replace(**{**RUN, "train.epochs": 4, "train.patience": 10})
    cfg.save(work / "config4.json")
    args = ["train", "--config", str(work / "config4.json"), "--no-progress"]
    whole, killed = work / "whole", work / "killed"
    if not (whole / "test_metrics.json").exists():
        finish(elcrec([*args, "--run-dir", str(whole)], 2), timeout=600)
    proc = elcrec([*args, "--run-dir", str(killed)], 2, ["--max-restarts=1"])
    deadline = time.time() + 900
    while time.time() < deadline and len(RunFolder(killed).epochs()) < 2:
        time.sleep(0.2)
    workers = children(proc.pid)
    os.kill(workers[-1], signal.SIGKILL)  # a rank dies mid-epoch
    finish(proc, timeout=600)
    curve = [
        {k: v for k, v in r.items() if k.startswith(("loss/", "valid/"))}
        for r in RunFolder(killed).epochs()
    ]
    same_curve = curve == [
        {k: v for k, v in r.items() if k.startswith(("loss/", "valid/"))}
        for r in RunFolder(whole).epochs()
    ]
    return {
        "killed_after_epochs": 2,
        "workers_killed": 1,
        "elastic_resume_identical": test_metrics(killed) == test_metrics(whole) and same_curve,
        "metrics_whole": test_metrics(whole),
        "metrics_killed_and_resumed": test_metrics(killed),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", action="store_true", help="also the whole-run checks (minutes)")
    ap.add_argument(
        "--work",
        help="run folders of --runs, kept so that a rerun resumes "
        "(default: $ELCREC_WORK/ddp_equivalence)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    cases = [compare(case) for case in CASES]
    ok = all(max(c["max_abs_loss_diff"], c["max_abs_grad_diff"]) <= TOLERANCE for c in cases)
    md = [
        "# Two gloo ranks with half a batch each against one process with the batch",
        "",
        f"Command: `{command()}`  ",
        f"One training step, dropout off; tolerance {TOLERANCE}; all within: **{ok}**",
        "",
        "| case | terms | max abs loss diff | max abs grad diff (parameters) |",
        "|---|---|---|---|",
        *(
            f"| {c['case']} | {', '.join(c['abs_loss_diff'])} | {c['max_abs_loss_diff']:.2e} "
            f"| {c['max_abs_grad_diff']:.2e} ({c['parameters_compared']}) |"
            for c in cases
        ),
        "",
    ]
    evaluation = compare_evaluation()
    md += [
        "",
        f"Evaluation shared by 2 ranks ({evaluation['users_scored_per_rank']} users scored "
        f"each, of {evaluation['users']}): every user's test rank identical to one "
        f"process's: **{evaluation['identical_ranks']}**",
    ]
    runs = {
        "metrics_2rank": None,
        "metrics_1proc_seeds": None,
        "metrics_2rank_seeds": None,
        "within_spread": None,
        "elastic_resume_identical": None,
    }
    if args.runs:
        work = Path(args.work) if args.work else default_work() / "ddp_equivalence"
        work.mkdir(parents=True, exist_ok=True)
        runs = {**whole_runs(work), **elastic_resume(work)}
        seeds = runs["metrics_1proc_seeds"]
        md += ["", f"Whole runs on synthetic data ({RUN}): test NDCG@20 / HR@20", ""]
        md += ["| run | NDCG@20 | HR@20 |", "|---|---|---|"]
        md += [
            f"| one process, seed {s} | {m['NDCG@20']:.4f} | {m['HR@20']:.4f} |"
            for s, m in seeds.items()
        ]
        md += [
            f"| 2 ranks, seed {s} | {m['NDCG@20']:.4f} | {m['HR@20']:.4f} |"
            for s, m in runs["metrics_2rank_seeds"].items()
        ]
        d = runs["ndcg20_mean_difference"]
        md += [
            "",
            f"Mean NDCG@20, 2 ranks minus one process: {d['2rank_minus_1proc']:+.4f} "
            f"(standard error {d['standard_error']:.4f}); within two standard errors: "
            f"**{runs['within_spread']}**",
            "",
        ]
        md += [
            "A rank killed (SIGKILL) after the second of 4 epochs, torchrun restarting both "
            f"from the last checkpoint: identical metrics and curve: "
            f"**{runs['elastic_resume_identical']}**",
        ]
    else:
        md += ["", "Whole runs not measured (`--runs`)."]
    md.append("")
    payload = {
        "one_step": cases,
        "tolerance": TOLERANCE,
        "all_within": ok,
        "max_abs_loss_diff": max(c["max_abs_loss_diff"] for c in cases),
        "max_abs_grad_diff": max(c["max_abs_grad_diff"] for c in cases),
        "sharded_evaluation": evaluation,
        **runs,
        "command": command(),
        **environment(),
    }
    write_results("ddp_equivalence", payload, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
