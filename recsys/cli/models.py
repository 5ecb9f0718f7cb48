"""Recommender commands: models, train, evaluate, recommend, bench."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import Context, Result, add_command
from ..errors import RecsysError

DEFAULT_KS = [5, 10, 20]
TABLE_METRICS = (("recall", 10), ("recall", 20), ("ndcg", 10), ("ndcg", 20), ("hit_rate", 20),
                 ("map", 20), ("mrr", 20), ("auc", None), ("coverage", 20))


def register(sub: argparse._SubParsersAction) -> None:
    add_command(sub, "models", list_models,
                "List the recommenders, their signals and hyperparameters.", dataset=False)

    p = add_command(sub, "train", train, "Train a recommender on the training split.")
    p.add_argument("--model", required=True, help="model name (see `python -m recsys models`)")
    _split_options(p)
    p.add_argument("--epochs", type=int, help="maximum epochs (iterative models)")
    p.add_argument("--seed", type=int, help="model seed (default 0)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="any hyperparameter, e.g. -p dim=128 -p lr=0.001 (repeatable)")

    p = add_command(sub, "evaluate", evaluate,
                    "Evaluate models on the test split (training those without a model).")
    p.add_argument("--models", nargs="+", help="model names (default: all that apply)")
    p.add_argument("--k", nargs="+", type=int, default=DEFAULT_KS, help="cut-offs (default 5 10 20)")
    _split_options(p)
    p.add_argument("--retrain", action="store_true", help="train again even if a model exists")

    p = add_command(sub, "recommend", recommend, "Recommend items to a user, with reasons.")
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--model", help="model name or run id (default: attention-fusion when the "
                                   "dataset has item vectors, else ease)")
    p.add_argument("--k", type=int, default=10)

    p = add_command(sub, "bench", bench,
                    "Benchmark training time, recommendation latency and evaluation time.")
    p.add_argument("--models", nargs="+", help="model names (default: all that apply)")
    p.add_argument("--users", type=int, default=200, help="users timed for latency")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", help="write the JSON here (default: artifacts/bench/<dataset>.json)")


def _split_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="auto", choices=["auto", "stored", "random", "temporal"],
                   help="split: stored with the data, random 8:1:1, temporal leave-last-out")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the random split")


def _params(ctx: Context) -> dict[str, str]:
    out: dict[str, object] = {}
    for pair in ctx.args.param:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise RecsysError(f"--param expects NAME=VALUE, got {pair!r}")
        out[name.strip()] = value.strip()
    for name in ("epochs", "seed"):
        if getattr(ctx.args, name) is not None:
            out[name] = getattr(ctx.args, name)
    return out


def list_models(ctx: Context) -> Result:
    from ..models import describe_models

    models = describe_models()
    lines = [f"{'model':<18}{'family':<14}{'signals':<17}summary"]
    for m in models:
        lines.append(f"{m['name']:<18}{m['family']:<14}{'+'.join(m['requires']):<17}"
                     f"{m['summary']}")
    lines.append("Hyperparameters: `python -m recsys models --json`; set them with "
                 "`train --model NAME -p NAME=VALUE`.")
    return Result(models, "\n".join(lines))


def train(ctx: Context) -> Result:
    from ..training import train_model

    dataset = ctx.dataset()
    with ctx.progress(f"train {ctx.args.model}") as bar:
        run = train_model(ctx.store(), dataset, ctx.args.model, _params(ctx), progress=bar,
                          protocol=ctx.args.protocol, split_seed=ctx.args.split_seed)
    best = next((h for h in run.history if h.epoch == run.model.best_epoch), None) \
        or (run.history[-1] if run.history else None)
    lines = [f"Trained {run.name} on '{dataset}' ({run.config['protocol']} split) in "
             f"{run.seconds:.1f} s: run {run.run_id}, saved to {run.artifact_path}"]
    if run.model.iterative:
        lines.append(f"{len(run.history)} epochs, best epoch {run.model.best_epoch}")
        lines.append(f"{'epoch':>6}{'train loss':>12}{'val loss':>10}{'val NDCG@20':>13}")
        for h in run.history:
            lines.append(f"{h.epoch:>6}{_num(h.train_loss, 12)}{_num(h.val_loss, 10)}"
                         f"{_num(h.val_ndcg, 13)}")
    elif best is not None and best.val_ndcg is not None:
        lines.append(f"validation NDCG@20 {best.val_ndcg:.4f}")
    return Result(run.summary(), "\n".join(lines))


def _num(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"


def evaluate(ctx: Context) -> Result:
    from ..evaluation import evaluate_models

    dataset = ctx.dataset()
    with ctx.progress("evaluate") as bar:
        frame = evaluate_models(ctx.store(), dataset, ctx.args.models, ctx.args.k,
                                ctx.args.protocol, ctx.args.split_seed, ctx.args.retrain, bar)
    return Result(frame.to_dict("records"), format_results(frame, dataset))


def format_results(frame, dataset: str) -> str:
    """Main test metrics per model (all users), then the cold-item and short-history slices."""
    protocol = frame["protocol"].iloc[0]
    ks = sorted({int(k) for k in frame["k"].dropna()})
    wanted = [(m, k) for m, k in TABLE_METRICS if k is None or k in ks]

    def value(model: str, slice_: str, metric: str, k: int | None) -> str:
        sel = frame[(frame.model == model) & (frame.slice == slice_) & (frame.metric == metric)]
        sel = sel[sel.k.isna()] if k is None else sel[sel.k == k]
        return f"{sel['value'].iloc[0]:.4f}" if len(sel) else "-"

    header = "".join(f"{(m if k is None else f'{m}@{k}'):>12}" for m, k in wanted)
    lines = [f"Test metrics on '{dataset}' ({protocol} split, all items ranked, training items "
             "excluded)", f"{'model':<18}{header}"]
    for model in frame["model"].unique():
        lines.append(f"{model:<18}" + "".join(f"{value(model, 'all', m, k):>12}"
                                               for m, k in wanted))
    k = 20 if 20 in ks else max(ks)
    lines += ["", f"Slices at K={k}: cold-start items (no training interactions) and users "
                  "with short histories",
              f"{'model':<18}{'cold recall':>12}{'cold NDCG':>12}{'cold share':>12}"
              f"{'short recall':>14}{'short NDCG':>12}{'diversity':>11}{'novelty':>9}"]
    for model in frame["model"].unique():
        lines.append(f"{model:<18}{value(model, 'cold_items', 'recall', k):>12}"
                     f"{value(model, 'cold_items', 'ndcg', k):>12}"
                     f"{value(model, 'cold_items', 'cold_share', k):>12}"
                     f"{value(model, 'short_history', 'recall', k):>14}"
                     f"{value(model, 'short_history', 'ndcg', k):>12}"
                     f"{value(model, 'all', 'diversity', k):>11}"
                     f"{value(model, 'all', 'novelty', k):>9}")
    return "\n".join(lines)


def recommend(ctx: Context) -> Result:
    from ..evaluation import load_data
    from ..explain import explain_recommendations
    from ..models import get_spec
    from ..training import ModelNotTrained, load_model, train_model

    store = ctx.store()
    dataset = ctx.dataset()
    name = ctx.args.model
    if name is None:
        embedded = not store.embedding_sets(dataset).empty
        name = "attention-fusion" if embedded else "ease"
    elif not str(name).isdigit():
        get_spec(name)
    if not store.has_user(dataset, ctx.args.user):
        raise RecsysError(f"Unknown user {ctx.args.user!r} in dataset '{dataset}'. "
                          f"`python -m recsys status` shows the datasets; users are listed "
                          "on the app's Users page (ids look like "
                          f"{', '.join(store.users(dataset)['user_id'].head(3))}).")
    try:
        run = load_model(store, dataset, name)
    except ModelNotTrained:
        if str(name).isdigit():
            raise
        with ctx.progress(f"train {name}") as bar:
            run = train_model(store, dataset, name, progress=bar)
    data = load_data(store, dataset, run.config.get("protocol", "auto"),
                     run.config.get("split_seed", 0))
    explanations = explain_recommendations(run.model, data, ctx.args.user, ctx.args.k)
    ids = [e.item_id for e in explanations] + \
        [s.item_id for e in explanations for s in e.similar]
    titles = dict(zip(*store.items(dataset, list(dict.fromkeys(ids)))[["item_id", "title"]]
                      .T.values)) if ids else {}
    payload = {"user": ctx.args.user, "dataset": dataset, "model": run.name,
               "run_id": run.run_id,
               "items": [{**e.to_dict(), "title": titles.get(e.item_id)} for e in explanations]}
    lines = [f"Top {len(explanations)} for user {ctx.args.user} on '{dataset}' by {run.name} "
             f"(run {run.run_id})"]
    for e in explanations:
        weights = " ".join(f"{m} {w:.2f}" for m, w in e.weights.items())
        cold = " [new: no interactions yet]" if e.cold else ""
        lines.append(f"{e.rank:>3}. {e.item_id:<10} {_short(titles.get(e.item_id), 44):<44} "
                     f"score {e.score:8.4f}  weights: {weights}{cold}")
        if e.similar:
            like = "; ".join(f"{_short(titles.get(s.item_id) or s.item_id, 30)} ({s.similarity:.2f})"
                             for s in e.similar)
            lines.append(f"       like: {like}")
    return Result(payload, "\n".join(lines))


def _short(text: str | None, width: int) -> str:
    text = str(text or "")
    return text if len(text) <= width else text[:width - 1] + "…"


def bench(ctx: Context) -> Result:
    import json

    from .. import config
    from ..artifacts import atomic_path
    from ..models.bench import benchmark, format_table

    store = ctx.store()
    dataset = ctx.dataset()
    with ctx.progress("benchmark") as bar:
        result = benchmark(store, dataset, ctx.args.models, ctx.args.users, ctx.args.k,
                           progress=bar)
    out = Path(ctx.args.out) if ctx.args.out else \
        config.artifacts_dir(store.path, "bench") / f"recommenders-{dataset}.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    result["saved_to"] = str(out)
    return Result(result, format_table(result) + f"\nSaved to {out}")
