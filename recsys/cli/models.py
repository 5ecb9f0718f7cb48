"""Recommender commands: models, train, tune, prune-models, evaluate, recommend, runs, bench."""

from __future__ import annotations

import argparse

import pandas as pd

from recsys.core.errors import RecsysError
from recsys.data.interactions import PROTOCOL_HELP, PROTOCOLS
from recsys.recommend.rerank import DEFAULT_DIVERSITY

from ..usecases.evaluation import DIVERSITY_LEVELS
from ..usecases.recommenders import DEFAULT_KS, DEFAULT_MODEL, FALLBACK_MODEL
from . import Context, Result, add_command

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
    p.add_argument("--keep-models", type=int, metavar="N",
                   help="keep the newest N files of this model, delete older ones (default "
                        "$RECSYS_KEEP_MODELS or 3; 0 keeps all)")

    p = add_command(sub, "tune", tune,
                    "Tune a recommender's settings on the validation split (never the test "
                    "split), then train it with the best ones; the search is stored with the "
                    "run. Ctrl-C stops the search and keeps the best found so far.")
    p.add_argument("--model", required=True, help="model name (see `python -m recsys models`)")
    _split_options(p)
    p.add_argument("--trials", type=int, default=20, help="most settings tried (default 20)")
    p.add_argument("--budget", type=float, default=300.0, metavar="SECONDS",
                   help="time budget of the search in seconds (default 300; a trial running "
                        "when it ends is finished)")
    p.add_argument("--seed", type=int, help="model seed (default 0)")
    p.add_argument("--epochs", type=int, help="maximum epochs (iterative models)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE",
                   help="a hyperparameter kept fixed during the search (repeatable)")
    p.add_argument("--keep-models", type=int, metavar="N",
                   help="keep the newest N files of this model (default $RECSYS_KEEP_MODELS "
                        "or 3; 0 keeps all)")

    p = add_command(sub, "prune-models", prune_models,
                    "Delete old model files: keep the newest N per model (runs and their "
                    "metrics stay; the newest run of each model and split is always kept).")
    p.add_argument("--keep", type=int, metavar="N",
                   help="model files kept per model (default $RECSYS_KEEP_MODELS or 3)")
    p.add_argument("--model", help="only this model (default: every model)")
    p.add_argument("--all-datasets", action="store_true",
                   help="every dataset of the database (default: --dataset or the active one)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")

    p = add_command(sub, "evaluate", evaluate,
                    "Evaluate models on the test split (training those without a model).")
    p.add_argument("--models", nargs="+", help="model names (default: all that apply)")
    p.add_argument("--k", nargs="+", type=int, default=list(DEFAULT_KS),
                   help=f"cut-offs (default {' '.join(map(str, DEFAULT_KS))})")
    _split_options(p)
    p.add_argument("--retrain", action="store_true", help="train again even if a model exists")
    p.add_argument("--folds", type=int, metavar="K",
                   help="K-fold cross-validation over each user's interactions (2-20): mean ± "
                        "std over folds; models are fitted in memory on every fold")
    p.add_argument("--diversity", nargs="*", type=float, metavar="LEVEL",
                   default=list(DIVERSITY_LEVELS),
                   help="MMR diversity levels (0-1) whose re-ranked lists are measured too "
                        f"(default {' '.join(f'{d:g}' for d in DIVERSITY_LEVELS)}; "
                        "give none to skip)")
    p.add_argument("--baseline", metavar="MODEL",
                   help="the single-signal model every other is tested against (default: the "
                        "best one evaluated by NDCG@20)")

    p = add_command(sub, "recommend", recommend, "Recommend items to a user, with reasons.")
    p.add_argument("--user", required=True, help="user id")
    p.add_argument("--model", help=f"model name or run id (default: {DEFAULT_MODEL} when the "
                                   f"dataset has item vectors, else {FALLBACK_MODEL}; trained "
                                   "first when it has no finished run)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--include-seen", action="store_true",
                   help="also pick items the user already viewed, carted or bought (marked "
                        "[seen]); by default everything they interacted with is left out")
    p.add_argument("--diversity", type=float, default=None, metavar="0..1",
                   help="re-rank for variety (maximal marginal relevance over the image+text "
                        f"vectors): 0 = most relevant, 1 = most varied (default "
                        f"{DEFAULT_DIVERSITY})")

    p = add_command(sub, "runs", runs,
                    "List the runs a model can be loaded from (* = used when no model is named).")
    p.add_argument("--all", action="store_true", help="every run, also failed or interrupted")

    p = add_command(sub, "bench", bench,
                    "Benchmark training time, recommendation latency and evaluation time.")
    p.add_argument("--models", nargs="+", help="model names (default: all that apply)")
    p.add_argument("--users", type=int, default=200, help="users timed for latency")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", help="write the JSON here (default: artifacts/bench/<dataset>.json)")


def _split_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", default="auto", choices=PROTOCOLS, help=PROTOCOL_HELP)
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
    from ..usecases import list_models as run

    models = run()
    lines = [f"{'model':<18}{'family':<14}{'signals':<17}summary"]
    for m in models:
        lines.append(f"{m['name']:<18}{m['family']:<14}{'+'.join(m['requires']):<17}"
                     f"{m['summary']}")
    lines.append("Hyperparameters: `python -m recsys models --json`; set them with "
                 "`train --model NAME -p NAME=VALUE`.")
    return Result(models, "\n".join(lines))


def train(ctx: Context) -> Result:
    from ..usecases import train as run

    dataset = ctx.dataset()
    with ctx.progress(f"train {ctx.args.model}") as bar:
        result = run(ctx.store(), dataset, ctx.args.model, _params(ctx),
                     protocol=ctx.args.protocol, split_seed=ctx.args.split_seed,
                     keep_models=ctx.args.keep_models, progress=bar)
    run_ = result.run
    best = next((h for h in run_.history if h.epoch == run_.model.best_epoch), None) \
        or (run_.history[-1] if run_.history else None)
    lines = [result.vectors.summary()] if result.vectors and not result.vectors.nothing_to_do \
        else []
    lines.append(f"Trained {run_.name} on '{dataset}' ({run_.config['protocol']} split) in "
                 f"{run_.seconds:.1f} s: run {run_.run_id}, saved to {run_.artifact_path}")
    if run_.model.iterative:
        lines.append(f"{len(run_.history)} epochs, best epoch {run_.model.best_epoch}")
        lines.append(f"{'epoch':>6}{'train loss':>12}{'val loss':>10}{'val NDCG@20':>13}")
        for h in run_.history:
            lines.append(f"{h.epoch:>6}{_num(h.train_loss, 12)}{_num(h.val_loss, 10)}"
                         f"{_num(h.val_ndcg, 13)}")
    elif best is not None and best.val_ndcg is not None:
        lines.append(f"validation NDCG@20 {best.val_ndcg:.4f}")
    if run_.pruned:
        from recsys.recommend.housekeeping import format_bytes

        lines.append(f"Deleted {len(run_.pruned)} older {run_.name} model files "
                     f"({format_bytes(sum(d['bytes'] for d in run_.pruned))}; runs "
                     f"{', '.join(str(d['run_id']) for d in run_.pruned)})")
    return Result(result.to_dict(), "\n".join(lines))


def tune(ctx: Context) -> Result:
    from ..usecases import tune as run

    dataset = ctx.dataset()
    with ctx.progress(f"tune {ctx.args.model}") as bar:
        result = run(ctx.store(), dataset, ctx.args.model, _params(ctx),
                     trials=ctx.args.trials, budget_seconds=ctx.args.budget,
                     protocol=ctx.args.protocol, split_seed=ctx.args.split_seed,
                     keep_models=ctx.args.keep_models, progress=bar)
    found, run_ = result.tuning, result.run
    lines = [f"Tuned {run_.name} on '{dataset}' ({run_.config['protocol']} split): "
             f"{len(found.trials)} trials, stopped by {found.stopped_by}; validation NDCG@20 "
             f"on {found.validation_users:,} users:"]
    names = sorted({k for t in found.trials for k in t.params})
    lines.append(f"{'trial':>6}{'val NDCG@20':>13}{'seconds':>9}  " + "  ".join(names))
    for t in found.trials:
        value = "failed" if t.value is None else f"{t.value:.4f}"
        lines.append(f"{t.number:>6}{value:>13}{t.seconds:>9.1f}  "
                     + "  ".join(_short_value(t.params.get(n)) for n in names))
    chosen = ", ".join(f"{k}={_short_value(v)}" for k, v in found.best_params.items()) \
        or "its defaults"
    lines.append(f"Best: {found.best_value:.4f} with {chosen}. Trained with it in "
                 f"{run_.seconds:.1f} s: run {run_.run_id}, saved to {run_.artifact_path}")
    return Result(result.to_dict(), "\n".join(lines))


def _short_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def prune_models(ctx: Context) -> Result:
    from recsys.recommend.housekeeping import format_bytes

    from ..usecases import prune_models as run

    args = ctx.args
    dataset = None if args.all_datasets else ctx.dataset()
    report = run(ctx.store(), dataset, model=args.model, keep=args.keep, dry_run=args.dry_run,
                 all_datasets=args.all_datasets)
    lines = [report.summary()]
    for d in report.deleted:
        lines.append(f"  {'would delete' if args.dry_run else 'deleted'} run {d['run_id']:>5} "
                     f"{d['dataset']}/{d['model']}  {format_bytes(d['bytes']):>9}  {d['path']}")
    return Result(report.to_dict(), "\n".join(lines))


def _num(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"


def evaluate(ctx: Context) -> Result:
    from recsys.evaluation.summary import summarize

    from ..usecases import diversity_effect, tuned_models
    from ..usecases import evaluate as run

    dataset = ctx.dataset()
    store = ctx.store()
    with ctx.progress("evaluate") as bar:
        frame = run(store, dataset, ctx.args.models, ctx.args.k, ctx.args.protocol,
                    ctx.args.split_seed, ctx.args.retrain, bar, folds=ctx.args.folds,
                    diversity=ctx.args.diversity, baseline=ctx.args.baseline)
    rerank = diversity_effect(store, dataset)
    if not rerank.empty:
        rerank = rerank[rerank["run_id"].isin(set(frame["run_id"]))
                        & (rerank["protocol"] == frame["protocol"].iloc[0])
                        & (rerank["diversity"] > 0)]
    summary = summarize(frame, dataset, tuned=tuned_models(store, dataset, frame))
    text = format_results(frame, dataset)
    text += "\n\n" + format_significance(frame)
    if not rerank.empty:
        text += "\n\n" + format_diversity(frame, rerank)
    if summary is not None:
        text += "\n\n" + summary.sentence
    rows = frame.assign(diversity=0.0).to_dict("records")
    rows += rerank.drop(columns=["run_id"]).merge(
        frame[["model", "run_id"]].drop_duplicates(), on="model").to_dict("records") \
        if not rerank.empty else []
    return Result(rows, text, notes=frame.attrs.get("notes", []))


def format_results(frame, dataset: str) -> str:
    """Main test metrics per model (all users), then the cold-item and short-history slices."""
    from recsys.evaluation.tables import metric_row

    protocol = frame["protocol"].iloc[0]
    ks = sorted({int(k) for k in frame["k"].dropna()})
    wanted = [(m, k) for m, k in TABLE_METRICS if k is None or k in ks]

    def value(model: str, slice_: str, metric: str, k: int | None) -> str:
        row = metric_row(frame, model, metric, k, slice_)
        return "-" if row is None else f"{row['value']:.4f}"

    header = "".join(f"{(m if k is None else f'{m}@{k}'):>12}" for m, k in wanted)
    ranked = ("only the held-out new items ranked" if protocol == "new-items" else
              "all items ranked, training items excluded")
    lines = [f"Test metrics on '{dataset}' ({protocol} split, {ranked})", f"{'model':<18}{header}"]
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
    rated = [m for m in frame["model"].unique() if value(m, "all", "rmse", None) != "-"]
    if rated:
        lines += ["", "Rating prediction on the test ratings",
                  f"{'model':<18}{'MAE':>12}{'RMSE':>12}"]
        lines += [f"{m:<18}{value(m, 'all', 'mae', None):>12}{value(m, 'all', 'rmse', None):>12}"
                  for m in rated]
    return "\n".join(lines)


def _reference_k(frame) -> int:
    from recsys.evaluation.summary import reference_k

    return reference_k(int(k) for k in frame["k"].dropna().unique())


def _value(row) -> str:
    """0.1234 ± 0.0050 (folds) or 0.1234 [0.1100, 0.1350] (95% interval)."""
    from recsys.evaluation.tables import value_text

    return "-" if row is None else value_text(row, interval="[{:.4f}, {:.4f}]")


def _gain(row) -> str:
    from recsys.evaluation.stats import is_significant

    if row is None or pd.isna(row.get("gain")):
        return ""
    mark = "" if is_significant(row["p_value"]) else " n.s."
    return (f"{row['gain']:+.1%} [{row['gain_low']:+.1%}, {row['gain_high']:+.1%}] "
            f"p={row['p_value']:.2g}{mark}")


def format_significance(frame) -> str:
    """NDCG and recall at the reference K with their uncertainty, and each model's gain over
    the single-signal baseline (n.s. = not significant at `stats.ALPHA`)."""
    from recsys.evaluation.tables import baseline_of, metric_row

    k = _reference_k(frame)
    sel = frame[(frame["slice"] == "all") & (frame["k"] == k)]
    folds = sel["std"].notna().any()
    base = baseline_of(sel)
    lines = [f"Uncertainty at K={k} (all test users; "
             + ("mean ± std over folds, " if folds else "")
             + "95% bootstrap interval over users; gain = paired bootstrap interval and "
               "paired t-test against "
             + (base or "no single-signal model") + ")",
             f"{'model':<18}{'NDCG@' + str(k):<28}{'recall@' + str(k):<28}NDCG gain vs baseline"]
    for model in frame["model"].unique():
        ndcg, recall = (metric_row(sel, model, m, k) for m in ("ndcg", "recall"))
        lines.append(f"{model:<18}{_value(ndcg):<28}"
                     f"{_value(recall):<28}{_gain(ndcg) or '(baseline)'}")
    return "\n".join(lines)


def format_diversity(frame, rerank) -> str:
    """NDCG, intra-list diversity and coverage at the reference K per MMR level."""
    from recsys.evaluation.stats import ALPHA, is_significant
    from recsys.evaluation.tables import metric_row

    k = _reference_k(frame)
    plain = frame[(frame["slice"] == "all") & (frame["k"] == k)]
    lines = [f"Diversity re-ranking (MMR) at K={k}: change against the model's own list",
             f"{'model':<18}{'level':>6}{'NDCG':>9}{'change':>10}{'diversity':>11}{'change':>10}"
             f"{'coverage':>10}"]

    def pick(frame_, model, metric):
        return metric_row(frame_, model, metric, k)

    def change(row) -> str:
        if row is None or pd.isna(row["gain"]):
            return ""
        return f"{row['gain']:+.1%}" + ("" if is_significant(row["p_value"]) else "*")

    for model in frame["model"].unique():
        levels = sorted(rerank[rerank["model"] == model]["diversity"].unique())
        if not levels:
            continue
        for level in [0.0, *levels]:
            src = plain if level == 0 else rerank[rerank["diversity"] == level]
            ndcg, div, cov = (pick(src, model, m) for m in ("ndcg", "diversity", "coverage"))
            lines.append(f"{model if level == 0 else '':<18}{level:>6g}"
                         f"{'-' if ndcg is None else f'{ndcg.value:.4f}':>9}"
                         f"{change(ndcg) if level else '':>10}"
                         f"{'-' if div is None else f'{div.value:.4f}':>11}"
                         f"{change(div) if level else '':>10}"
                         f"{'-' if cov is None else f'{cov.value:.3f}':>10}")
    lines.append(f"* not significant at {ALPHA:.0%} (paired t-test over users)")
    return "\n".join(lines)


def recommend(ctx: Context) -> Result:
    from recsys.explain.sentences import EVENT_WORDS, plain

    from ..usecases import recommend_for

    dataset = ctx.dataset()
    with ctx.progress("recommend") as bar:
        recs = recommend_for(ctx.store(), dataset, ctx.args.user, ctx.args.model, ctx.args.k,
                             include_seen=ctx.args.include_seen, diversity=ctx.args.diversity,
                             progress=bar)
    seen = "included" if recs.include_seen else "left out"
    lines = [f"Top {len(recs.items)} for user {recs.user_id} on '{dataset}' by {recs.label} "
             f"({recs.model}, run {recs.run_id}); diversity {recs.diversity:g}, items the user "
             f"already interacted with {seen}"]
    for e in recs.items:
        weights = " ".join(f"{m} {w:.2f}" for m, w in e.weights.items())
        tags = (" [new: no interactions yet]" if e.cold else "") + \
            (f" [seen: {EVENT_WORDS.get(recs.history[e.item_id], 'seen')}]"
             if e.item_id in recs.history else "")
        lines.append(f"{e.rank:>3}. {e.item_id:<10} {_short(recs.title(e.item_id), 44):<44} "
                     f"score {e.score:8.4f}  weights: {weights}{tags}")
        if e.item_id in recs.sentences:
            lines.append(f"       {plain(recs.sentences[e.item_id])}")
        attrs = recs.attributes.get(e.item_id)
        if attrs is not None and attrs.drivers:
            lines.append("       driven by: " + ", ".join(
                f"{a.attribute} {a.value} (+{a.effect:.2f})" for a in attrs.drivers))
        if e.similar:
            def cite(s) -> str:
                event = EVENT_WORDS.get(recs.history.get(s.item_id, ""))
                return (f"{_short(recs.title(s.item_id) or s.item_id, 30)} "
                        f"({s.similarity:.2f}{', ' + event if event else ''})")

            lines.append("       like: " + "; ".join(cite(s) for s in e.similar))
    if recs.similarity:
        lines.append(f"Mean similarity between the picks {recs.similarity['picks']:.2f} "
                     f"(model order: {recs.similarity['most_relevant']:.2f}).")
    if recs.rule:
        lines.append(recs.rule)
    return Result(recs.to_dict(), "\n".join(lines), notes=recs.notes)


def runs(ctx: Context) -> Result:
    from ..usecases import list_runs

    dataset = ctx.dataset()
    frame = list_runs(ctx.store(), dataset, all_runs=ctx.args.all)
    lines = [f"{'run':>5}  {'model':<18}{'status':<12}{'seconds':>9}  started" if len(frame) else
             f"No {'' if ctx.args.all else 'usable '}run for '{dataset}' yet: train one with "
             "`python -m recsys train --model NAME`."]
    for r in frame.to_dict("records"):
        mark = "*" if r.get("default") else " "
        seconds = "-" if r["seconds"] is None or r["seconds"] != r["seconds"] else \
            f"{r['seconds']:.1f}"
        lines.append(f"{r['run_id']:>4}{mark}  {r['model']:<18}{r['status']:<12}{seconds:>9}  "
                     f"{r['started_at']:%Y-%m-%d %H:%M}")
    return Result(frame.to_dict("records"), "\n".join(lines))


def _short(text: str | None, width: int) -> str:
    text = str(text or "")
    return text if len(text) <= width else text[:width - 1] + "…"


def bench(ctx: Context) -> Result:
    from recsys.evaluation.benchmark import format_table

    from ..usecases import bench as run

    with ctx.progress("benchmark") as bar:
        result = run(ctx.store(), ctx.dataset(), ctx.args.models, ctx.args.users, ctx.args.k,
                     out=ctx.args.out, progress=bar)
    return Result(result, format_table(result) + f"\nSaved to {result['saved_to']}")
