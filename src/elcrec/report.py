"""Pictures of a trained run and a one-file HTML report (``elcrec report RUN``):
training curves, the intents of users grouped by activity (the paper's case
studies, figures 4-6) and a t-SNE of user representations coloured by intent.

Activity groups (stated in the report): users are ranked by the length of their
sequence and cut at its quartiles: ``new`` (shortest 25 %), ``low``, ``medium``,
``high`` (longest 25 %); ties at a cut go to the lower group.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from elcrec._io import atomic_write, atomic_write_text
from elcrec.evaluate import nearest_intents
from elcrec.inference import Recommender

GROUPS = ("new", "low", "medium", "high")


def activity_groups(lengths: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Group index (0 new .. 3 high) of every user, and the three length cuts."""
    cuts = [float(np.quantile(lengths, q)) for q in (0.25, 0.5, 0.75)]
    return np.searchsorted(cuts, lengths, side="left"), cuts


def intent_shares(intent: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """(4, k): each activity group's distribution over the intents."""
    counts = np.zeros((len(GROUPS), k))
    np.add.at(counts, (groups, intent), 1.0)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _figure().close(fig)
    return buf.getvalue()


def plot_curves(records: list[dict]) -> bytes:
    """Validation HR@5 and NDCG@20, and every loss term, per epoch."""
    plt = _figure()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    epochs = [r["epoch"] for r in records]
    for key in ("valid/HR@5", "valid/NDCG@20"):
        left.plot(epochs, [r[key] for r in records], label=key.split("/")[1])
    left.set(xlabel="epoch", title="validation")
    left.legend()
    for key in sorted(k for k in records[0] if k.startswith("loss/") and k != "loss/total"):
        right.plot(epochs, [r[key] for r in records], label=key.split("/")[1])
    right.set(xlabel="epoch", title="loss terms (per-epoch mean)", yscale="symlog")
    right.legend()
    return _png(fig)


def plot_intents_by_activity(shares: np.ndarray, order: np.ndarray) -> bytes:
    """One panel per activity group: its share of users in each intent, intents
    ordered by overall size (largest left)."""
    plt = _figure()
    fig, axes = plt.subplots(len(GROUPS), 1, figsize=(11, 7), sharex=True, sharey=True)
    for g, ax in enumerate(axes):
        ax.bar(np.arange(len(order)), shares[g, order], width=1.0, color=f"C{g}")
        ax.set_ylabel(GROUPS[g])
    axes[0].set_title("share of each activity group's users per intent (intents by overall size)")
    axes[-1].set_xlabel("intent rank")
    return _png(fig)


def plot_tsne(reprs: np.ndarray, intent: np.ndarray, n: int, seed: int = 0) -> bytes:
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(reprs), size=min(n, len(reprs)), replace=False)
    xy = TSNE(init="pca", random_state=seed, perplexity=30).fit_transform(reprs[pick])
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.scatter(xy[:, 0], xy[:, 1], c=intent[pick] % 20, cmap="tab20", s=3)
    ax.set(title=f"t-SNE of {len(pick)} users' representations, coloured by intent")
    ax.set_xticks([])
    ax.set_yticks([])
    return _png(fig)


def write_report(run_dir: str | Path, out: str | Path | None = None, tsne_users=3000) -> Path:
    """One self-contained HTML file (images inlined) for a finished run, and
    the pictures as PNG files in ``<report>_figures/``."""
    run_dir = Path(run_dir)
    out = Path(out or run_dir / "report.html")
    rec = Recommender.load(run_dir)
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    result_path = run_dir / "test_metrics.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    images = {"Training curves": plot_curves(records)} if records else {}
    sections = []
    if rec.model.uses_intents:
        ids, _, reprs = nearest_intents(rec.model, rec.data, rec.device, 1, with_repr=True)
        intent = ids[:, 0]
        k = rec.cfg.model.n_clusters
        groups, cuts = activity_groups(rec.data.lengths)
        shares = intent_shares(intent, groups, k)
        order = np.argsort(-np.bincount(intent, minlength=k), kind="stable")
        images["Intent shares by user activity"] = plot_intents_by_activity(shares, order)
        images["User representations (t-SNE)"] = plot_tsne(reprs, intent, tsne_users)
        sections.append(_groups_table(groups, cuts, shares))
    body = [
        f"<h1>elcrec run: {html.escape(str(run_dir))}</h1>",
        _metrics_table(result),
        *sections,
        *(
            f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            for title, png in images.items()
        ),
        "<h2>Configuration</h2><pre>" + html.escape(json.dumps(rec.cfg.to_dict(), indent=2)),
        "</pre>",
    ]
    atomic_write_text(out, _PAGE.format(title=html.escape(run_dir.name), body="\n".join(body)))
    # The same pictures as PNG files, for papers and slides.
    figures = out.parent / f"{out.stem}_figures"
    for title, png in images.items():
        slug = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")
        atomic_write(figures / f"{slug}.png", lambda tmp, data=png: Path(tmp).write_bytes(data))
    return out


def _metrics_table(result: dict) -> str:
    if not result:
        return "<p>No test result yet (the run is unfinished).</p>"
    test = result["test"]
    rows = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in test.items())
    facts = (
        f"best validation NDCG@20 {result['best_valid_ndcg20']:.4f} at epoch "
        f"{result['best_epoch']}, {result['epochs_run']} epochs, {result['wall_s']:.0f} s, "
        f"history items masked by {result.get('history_mask', 'neg_inf')}"
    )
    return f"<h2>Test metrics</h2><p>{facts}</p><table>{rows}</table>"


def _groups_table(groups: np.ndarray, cuts: list[float], shares: np.ndarray) -> str:
    bounds = [f"length ≤ {cuts[0]:g}", f"≤ {cuts[1]:g}", f"≤ {cuts[2]:g}", f"> {cuts[2]:g}"]
    rows = []
    for g, name in enumerate(GROUPS):
        used = np.flatnonzero(shares[g] > 0)
        ranked = used[np.argsort(-shares[g, used], kind="stable")]
        top = ", ".join(f"{j} ({shares[g, j]:.2%})" for j in ranked[:3])
        bottom = ", ".join(f"{j} ({shares[g, j]:.2%})" for j in ranked[-3:][::-1])
        rows.append(
            f"<tr><td>{name}</td><td>{bounds[g]}</td><td>{int((groups == g).sum())}</td>"
            f"<td>{len(used)}</td><td>{top}</td><td>{bottom}</td></tr>"
        )
    return (
        "<h2>Intents by user activity</h2><p>Users ranked by sequence length and cut at "
        "its quartiles (ties go to the lower group).</p><table><tr><th>group</th>"
        "<th>definition</th><th>users</th><th>intents used</th><th>top 3 intents</th>"
        "<th>bottom 3 (of those used)</th></tr>" + "".join(rows) + "</table>"
    )


# The closing script marks the page once every image has decoded, so a test
# (or a person) can tell a rendered report from a broken one.
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>elcrec report: {title}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px}}
img{{max-width:100%}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head>
<body>
{body}
<script>
window.addEventListener("load", function () {{
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
}});
</script>
</body></html>
"""
