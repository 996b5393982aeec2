"""Step-by-step parity with the authors' released ELCRec code.

Both models get the same weights, the same batch and the same two augmented
views, in float64 (so that a difference is the computation's, not float32
rounding: the sequence CL's value is ~250, where float32 resolves 3e-5);
the authors' training step runs as released (``ELCRecTrainer.iteration``
on a one-batch loader, with its optimizer replaced by one that records the
gradients instead of stepping), ours is ``ELCRec.forward`` under the `paper`
preset's options.  Dropout is 0 in both (the two draw their masks from
different streams); everything else is the authors' published setting.

Every loss term is compared (next-item BCE, sequence CL, intent CL, cluster
loss, total) and every parameter's gradient.  The authors' loss terms are read
off their own code: the sequence and intent CL from their two CL methods, the
cluster loss from the two distance matrices their step computes (pull: mean
sample-center distance, push: mean center-center distance).

Cases: Beauty's settings (1 layer, k = 256, alpha = 10, shift fusion) and a
concat-fusion case (2 layers, k = 64, alpha = 1), each with the centers as
they stand mid-training (off the unit sphere after an optimizer step), which
is where the order of operations inside a step matters.

    python benchmarks/parity_authors.py --authors-code DIR

DIR is the authors' source folder (``main.py``, ``models.py``, ...), else
``$ELCREC_REFERENCE_DIR/elcrec-authors-code``.  Writes benchmarks/results/parity_authors.{json,md}.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

from elcrec import RunConfig  # noqa: E402
from elcrec.data import augment  # noqa: E402
from elcrec.models import Batch, build_model  # noqa: E402

CASES = {
    "beauty_shift_1layer": dict(n_layers=1, n_clusters=256, alpha=10.0, fusion="shift"),
    "concat_2layers": dict(n_layers=2, n_clusters=64, alpha=1.0, fusion="concat"),
}
N_ITEMS, T, BATCH = 300, 50, 32
TOLERANCE = 1e-5


def authors_code(folder: str | os.PathLike | None = None) -> Path | None:
    """The authors' source folder, if it is there (the argument, else
    elcrec-authors-code in $ELCREC_REFERENCE_DIR)."""
    reference = os.environ.get("ELCREC_REFERENCE_DIR")
    folder = folder or (reference and Path(reference) / "elcrec-authors-code")
    if folder and (Path(folder) / "trainers.py").exists():
        return Path(folder)
    return None


def import_authors(folder: Path) -> dict:
    """Their modules import each other by bare name (``from modules import ...``):
    import them with the folder on sys.path, then take those names back out."""
    names = ("modules", "models", "utils", "data_augmentation", "datasets", "trainers")
    saved = {n: sys.modules.pop(n) for n in names if n in sys.modules}
    sys.path.insert(0, str(folder))
    try:
        return {n: importlib.import_module(n) for n in ("models", "trainers")}
    finally:
        sys.path.remove(str(folder))
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def ours_config(case: dict, center_renorm: str = "after_seq_cl") -> RunConfig:
    """The `paper` preset's model options with the case's settings, no dropout."""
    return RunConfig().replace(
        **{
            "model.pooling": "mean_padded",
            "model.seq_cl_repr": "concat",
            "model.encoder_passes": 5,
            "model.center_renorm": center_renorm,
            "model.dropout": 0.0,
            "data.max_len": T,
            **{f"model.{k}": v for k, v in case.items()},
        }
    )


def make_batch(seed: int):
    """Left-padded inputs, next-item targets, one negative per target (never
    the authors' extra mask id) and two crop/mask/reorder views, as tensors."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 60, BATCH)
    seqs = [rng.integers(1, N_ITEMS + 1, n) for n in lengths]
    items = np.zeros((BATCH, T), np.int64)
    pos = np.zeros((BATCH, T), np.int64)
    neg = np.zeros((BATCH, T), np.int64)
    for r, s in enumerate(seqs):
        inp, tgt = s[:-1][-T:], s[1:][-T:]
        items[r, T - len(inp) :], pos[r, T - len(tgt) :] = inp, tgt
        neg[r, T - len(tgt) :] = rng.integers(1, N_ITEMS + 1, len(tgt))
    flat = np.concatenate([s[:-1] for s in seqs])
    offsets = np.concatenate([[0], np.cumsum([len(s) - 1 for s in seqs])])
    views = []
    for _ in range(2):
        v = augment(flat, offsets[:-1], offsets[1:], rng, (0.2, 0.7, 0.2), T)
        full = np.zeros((BATCH, T), np.int64)
        full[:, T - v.shape[1] :] = v[:, -T:]
        views.append(full)
    return [torch.from_numpy(x) for x in (items, pos, neg, *views)]


def authors_args(case: dict) -> Namespace:
    return Namespace(
        hidden_size=64,
        num_hidden_layers=case["n_layers"],
        num_attention_heads=2,
        hidden_act="gelu",
        attention_probs_dropout_prob=0.0,
        hidden_dropout_prob=0.0,
        initializer_range=0.02,
        max_seq_length=T,
        item_size=N_ITEMS + 2,  # their catalogue has one extra id, the mask id
        num_intent_clusters=str(case["n_clusters"]),
        seed=1,
        gpu_id="0",
        seq_representation_type="mean",
        seq_representation_instancecl_type="concatenate",
        n_views=2,
        lr=1e-3,
        adam_beta1=0.9,
        adam_beta2=0.999,
        weight_decay=0.0,
        temperature=1.0,
        cuda_condition=False,
        no_cuda=True,
        contrast_type="Hybrid",
        warm_up_epoches=0,
        de_noise=False,
        cf_weight=0.1,
        intent_cf_weight=0.1,
        rec_weight=1.0,
        trade_off=case["alpha"],
        prototype=case["fusion"],
        log_file=os.devnull,
    )


def parameter_pairs(theirs, ours) -> dict[str, tuple]:
    """Our parameter name -> (a function of their model giving the same
    tensor's value or gradient, our parameter)."""
    enc = ours.encoder
    pairs = {
        "encoder.item_emb.weight": (lambda m, g: g(m.item_embeddings.weight)[: N_ITEMS + 1],),
        "encoder.pos_emb.weight": (lambda m, g: g(m.position_embeddings.weight),),
        "encoder.ln.weight": (lambda m, g: g(m.LayerNorm.weight),),
        "encoder.ln.bias": (lambda m, g: g(m.LayerNorm.bias),),
        "clusters.centers": (lambda m, g: g(m.cluster_centers),),
    }
    for i in range(len(enc.blocks)):

        def layer(m, i=i):
            return m.item_encoder.layer[i]

        b = f"encoder.blocks.{i}."
        for kind in ("weight", "bias"):
            pairs[b + f"qkv.{kind}"] = (
                lambda m, g, i=i, kind=kind: torch.cat(
                    [
                        g(getattr(getattr(layer(m, i).attention, n), kind))
                        for n in ("query", "key", "value")
                    ]
                ),
            )
            for ours_name, path in (
                ("attn_out", ("attention", "dense")),
                ("ln1", ("attention", "LayerNorm")),
                ("ffn_in", ("intermediate", "dense_1")),
                ("ffn_out", ("intermediate", "dense_2")),
                ("ln2", ("intermediate", "LayerNorm")),
            ):
                pairs[b + f"{ours_name}.{kind}"] = (
                    lambda m, g, i=i, kind=kind, path=path: g(
                        getattr(getattr(getattr(layer(m, i), path[0]), path[1]), kind)
                    ),
                )
    named = dict(ours.named_parameters())
    return {name: (fn[0], named[name]) for name, fn in pairs.items()}


def compare(
    folder: Path, name: str, case: dict, center_renorm: str = "after_seq_cl", seed: int = 0
) -> dict:
    """One training step of each; the largest absolute differences."""
    authors = import_authors(folder)
    torch.manual_seed(seed)
    args = authors_args(case)
    model = authors["models"].SASRecModel(args).double()
    trainer = authors["trainers"].ELCRecTrainer(model, None, None, None, None, args)
    ours = build_model(N_ITEMS, T, ours_config(case, center_renorm).model).double()
    pairs = parameter_pairs(model, ours)
    with torch.no_grad():
        # Centers as mid-training: unit vectors moved by an optimizer step.
        centers = torch.nn.functional.normalize(torch.randn(case["n_clusters"], 64), dim=1).double()
        model.cluster_centers.copy_(centers + 1e-3 * torch.randn_like(centers))
        for fn, param in pairs.values():
            param.copy_(fn(model, lambda t: t))

    items, pos, neg, v1, v2 = make_batch(seed)

    # --- theirs: the released step, its terms recorded on the way ----------
    terms: dict[str, list] = {"seq_cl": [], "intent_cl": [], "distances": []}

    def recorder(key, fn):
        def wrapped(*a, **k):
            out = fn(*a, **k)
            terms[key].append(out)
            return out

        return wrapped

    trainer._instance_cl_one_pair_contrastive_learning = recorder(
        "seq_cl", trainer._instance_cl_one_pair_contrastive_learning
    )
    trainer._pcl_one_pair_contrastive_learning = recorder(
        "intent_cl", trainer._pcl_one_pair_contrastive_learning
    )
    trainer.distance = recorder("distances", trainer.distance)
    grads = {}

    class Recording:
        def zero_grad(self):
            model.zero_grad(set_to_none=True)

        def step(self):
            grads.update({n: fn(model, lambda t: t.grad) for n, (fn, _) in pairs.items()})

    trainer.optim = Recording()
    rec_batch = (torch.arange(BATCH), items, pos, neg, pos[:, -1])
    rec_loss, joint_loss = trainer.iteration(1, [(rec_batch, [[v1, v2]], None)], None)
    pull, push = terms["distances"][0].mean(), -terms["distances"][1].mean()
    theirs = {
        "next_item": rec_loss,
        "seq_cl": float(terms["seq_cl"][0].detach()),
        "intent_cl": float(terms["intent_cl"][0].detach()),
        "cluster": float((pull + push).detach()),
        "total": joint_loss,
    }

    # --- ours ---------------------------------------------------------------
    out = ours(Batch(items, pos, neg, torch.cat([v1, v2])))
    out["total"].backward()
    ours_losses = {k: float(out[k].detach()) for k in theirs}
    loss_diff = {k: abs(ours_losses[k] - v) for k, v in theirs.items()}
    grad_diff = {n: float((grads[n] - p.grad).abs().max()) for n, (_, p) in pairs.items()}
    return {
        "case": name,
        "settings": case,
        "losses_authors": theirs,
        "losses_ours": ours_losses,
        "abs_loss_diff": loss_diff,
        "max_abs_loss_diff": max(loss_diff.values()),
        "max_abs_grad_diff": max(grad_diff.values()),
        "worst_grad": max(grad_diff, key=grad_diff.get),
        "max_abs_grad": max(float(p.grad.abs().max()) for _, p in pairs.values()),
        "parameters_compared": len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors-code", help="the authors' source folder")
    args = parser.parse_args()
    folder = authors_code(args.authors_code)
    if folder is None:
        sys.exit("the authors' code was not found: pass --authors-code or set ELCREC_REFERENCE_DIR")
    torch.set_num_threads(1)
    cases = [compare(folder, name, case) for name, case in CASES.items()]
    # The other order (centers renormalised at the step's start), for contrast:
    # what a step differs by when the fusion sees unit centers.
    other = {
        name: {
            k: c[k]
            for k in ("max_abs_loss_diff", "max_abs_grad_diff")
            for c in [compare(folder, name, case, "step_start")]
        }
        for name, case in CASES.items()
    }
    ok = all(max(c["max_abs_loss_diff"], c["max_abs_grad_diff"]) < TOLERANCE for c in cases)
    md = [
        "# Parity with the authors' code: one training step, same weights, batch and views",
        "",
        f"Command: `{command()}`  ",
        f"Tolerance {TOLERANCE}; all within: **{ok}**",
        "",
        "| case | term | authors | ours | abs diff |",
        "|---|---|---|---|---|",
    ]
    for c in cases:
        for term, value in c["losses_authors"].items():
            md.append(
                f"| {c['case']} | {term} | {value:.8f} | {c['losses_ours'][term]:.8f} | "
                f"{c['abs_loss_diff'][term]:.2e} |"
            )
        md.append(
            f"| {c['case']} | gradients ({c['parameters_compared']} tensors, largest "
            f"{c['max_abs_grad']:.2e}) | | | {c['max_abs_grad_diff']:.2e} ({c['worst_grad']}) |"
        )
    md += [
        "",
        "With `model.center_renorm = step_start` instead (every loss sees unit centers; "
        "the `fast` presets' order), the same step differs by:",
        "",
        "| case | max abs loss diff | max abs grad diff |",
        "|---|---|---|",
        *(
            f"| {n} | {o['max_abs_loss_diff']:.2e} | {o['max_abs_grad_diff']:.2e} |"
            for n, o in other.items()
        ),
    ]
    payload = {
        "cases": cases,
        "tolerance": TOLERANCE,
        "all_within": ok,
        "dtype": "float64",
        "step_start_order_for_contrast": other,
        "command": command(),
    }
    write_results("parity_authors", {**payload, **environment()}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
