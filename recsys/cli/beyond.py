"""Commands beyond ranked lists: search as a shopper, a new shopper's picks, the catalog map,
cluster purity, a simulated A/B test, and the offline measurements of the first two."""

from __future__ import annotations

import argparse

from recsys.evaluation.stats import ALPHA

from . import Context, Result, add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "search-as", search_as,
                    "Search as one shopper: the query's best matches reordered by the "
                    "shopper's taste (a model's scores).")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the shopper's user id")
    who.add_argument("--likes", nargs="+", metavar="ITEM_ID",
                     help="a new shopper's liked products (fold-in)")
    p.add_argument("--text", metavar="QUERY", help="query words")
    p.add_argument("--image", metavar="FILE", help="query photo")
    p.add_argument("--item", metavar="ITEM_ID", help="query catalog product")
    p.add_argument("--taste", type=float, default=None,
                   help="0 = query only ... 1 = taste only among the matches (default 0.3)")
    p.add_argument("--k", type=int, default=10, help="results (default 10)")
    p.add_argument("--pool", type=int, help="query matches the taste reorders (default 300, at "
                                            "most 5%% of the catalog, at least --k)")
    p.add_argument("--model", help="model name or run id (default: the default model)")
    p.add_argument("--image-weight", type=float, help="photo vs text weight of the query match")
    p.add_argument("--hide-history", action="store_true",
                   help="leave out products the shopper already has")

    p = add_command(sub, "new-shopper", new_shopper,
                    "Picks for a shopper the model never saw, from a few liked products or a "
                    "photo, with no retraining (fold-in).")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--likes", nargs="+", metavar="ITEM_ID", help="liked product ids")
    start.add_argument("--image", metavar="FILE",
                       help="a photo: it stands for its nearest catalog products")
    p.add_argument("--model", help="model name or run id (default: the default model)")
    p.add_argument("--k", type=int, default=10, help="picks (default 10)")

    p = add_command(sub, "coldstart-eval", coldstart_eval,
                    "New-shopper quality: held-out test users' first 1/3/5 training items as "
                    "the only history, models fitted without them.")
    p.add_argument("--models", nargs="+", help="default: popularity content ease late-fusion "
                                               "attention-fusion")
    p.add_argument("--lengths", nargs="+", type=int, default=[1, 3, 5])
    p.add_argument("--users", type=int, default=300, help="held-out shoppers (default 300)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)

    p = add_command(sub, "search-eval", search_eval,
                    "Personalised search offline: each test user's held-out products looked "
                    "for by their article type, NDCG@K from query only to taste only.")
    p.add_argument("--model", help="model name or run id (default: the default model)")
    p.add_argument("--tastes", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--query-from", choices=("type", "words"), default="type",
                   help="type = article type; words = gender, colour and type")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--pool", type=int, help="query matches reordered (default 300, at most 5%% "
                                            "of the catalog, at least --k)")
    p.add_argument("--users", type=int, help="at most this many test users (seeded sample)")

    p = add_command(sub, "map", catalog_map,
                    "A 2-D map of the products' vectors with named k-means clusters.")
    p.add_argument("--vectors", choices=("fused", "image", "text"), default="fused")
    p.add_argument("--method", choices=("auto", "umap", "tsne"), default=None,
                   help="projection (default auto: UMAP from 2,000 products on, else t-SNE)")
    p.add_argument("--clusters", type=int, help="k-means clusters (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-weight", type=float,
                   help="photo vs text weight of the fused vectors (default 0.7)")
    p.add_argument("--user", help="overlay this shopper's history and picks")
    p.add_argument("--model", help="model of the overlaid picks")
    p.add_argument("--out", metavar="CSV", help="write the points (item_id, x, y, cluster...)")

    p = add_command(sub, "purity", purity,
                    "Cluster purity and NMI against article type for photo, text and fused "
                    "vectors.")
    p.add_argument("--clusters", nargs="+", type=int,
                   help="k values (default: 20 and the number of article types)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-weight", type=float,
                   help="photo vs text weight of the fused vectors (default 0.7)")

    p = add_command(sub, "abtest", abtest,
                    "A simulated A/B test of two models in front of the simulated shoppers "
                    "(clicks drawn from their hidden tastes), next to the offline NDCG.")
    p.add_argument("--a", dest="model_a", default=None,
                   help="arm A: model name or run id (default popularity)")
    p.add_argument("--b", dest="model_b", default=None,
                   help="arm B: model name or run id (default: the default model)")
    p.add_argument("--k", type=int, default=10,
                   help="products shown (default 10; at most 100 and the catalog's size)")
    p.add_argument("--shoppers", type=int, help="shoppers in the test (default: all)")
    p.add_argument("--visits", type=int, default=1,
                   help="visits per shopper (default 1, at most 1,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=ALPHA, help="significance level")
    p.add_argument("--power", type=float, default=0.8, help="power for the sample size")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def search_as(ctx: Context) -> Result:
    from ..usecases import search_for_shopper

    args = ctx.args
    with ctx.progress("search") as bar:
        hits = search_for_shopper(ctx.store(), args.dataset, user_id=args.user,
                                  history=args.likes, text=args.text, photo=args.image,
                                  item_id=args.item, taste=args.taste, k=args.k,
                                  model=args.model, image_weight=args.image_weight,
                                  pool=args.pool, hide_history=args.hide_history, progress=bar)
    who = f"shopper {hits.shopper}" if hits.shopper else f"a new shopper who likes " \
                                                         f"{', '.join(hits.history)}"
    lines = [f"Top {len(hits.results)} for {who} on '{hits.dataset}' (taste {hits.taste:g}, "
             f"{hits.model} run {hits.run_id}, pool {hits.pool}):"]
    for r in hits.rows():
        mark = " [in history]" if r["in_history"] else ""
        lines.append(f"{r['rank']:>3}. {r['score']:.3f}  {r['item_id']:<10} "
                     f"{str(r['title'])[:50]:<50} query {r['query_share']:.0%} · taste "
                     f"{r['taste_share']:.0%}{mark}")
    return Result(hits.to_dict(), "\n".join(lines))


def new_shopper(ctx: Context) -> Result:
    from ..usecases import new_shopper_picks

    args = ctx.args
    with ctx.progress("picks") as bar:
        picks = new_shopper_picks(ctx.store(), args.dataset, args.likes or (), photo=args.image,
                                  model=args.model, k=args.k, progress=bar)
    start = "the photo's look-alikes" if picks.from_photo else "the liked products"
    lines = [f"Picks for a new shopper on '{picks.dataset}' from {start} "
             f"({picks.model} run {picks.run_id}, fold-in in {1000 * picks.seconds:.0f} ms):",
             "liked: " + "; ".join(f"{r['item_id']} {str(r.get('title'))[:40]}"
                                   for r in picks.liked.to_dict("records"))]
    for r in picks.items.to_dict("records"):
        lines.append(f"{r['rank']:>3}. {r['score']:8.4f}  {r['item_id']:<10} "
                     f"{str(r.get('title'))[:50]:<50} like {', '.join(r['resembles'])}"
                     + (" [new item]" if r["cold"] else ""))
    return Result(picks.to_dict(), "\n".join(lines))


def coldstart_eval(ctx: Context) -> Result:
    from ..usecases import evaluate_cold_start

    args = ctx.args
    with ctx.progress("cold-start evaluation") as bar:
        frame = evaluate_cold_start(ctx.store(), args.dataset, args.models, args.lengths,
                                    args.users, args.k, args.seed, progress=bar)
    k = int(frame["k"].iloc[0]) if len(frame) else args.k
    lengths = sorted(frame["history"].unique())
    head = "".join(f"{f'NDCG@{k} n={n}':>14}" for n in lengths) + \
        "".join(f"{f'R@{k} n={n}':>12}" for n in lengths)
    lines = [f"New shoppers on '{frame['dataset'].iloc[0]}': {frame['users'].iloc[0]} held-out "
             "test users, their first n training items as the only history",
             f"{'model':<18}{head}"]
    for model in frame["model"].unique():
        sel = frame[frame["model"] == model]

        def val(metric: str, n: int) -> float:
            return float(sel[(sel["metric"] == metric) & (sel["history"] == n)]["value"]
                         .iloc[0])

        lines.append(f"{model:<18}" + "".join(f"{val('ndcg', n):>14.4f}" for n in lengths)
                     + "".join(f"{val('recall', n):>12.4f}" for n in lengths))
    return Result(frame.to_dict("records"), "\n".join(lines),
                  notes=frame.attrs.get("notes", []))


def search_eval(ctx: Context) -> Result:
    from ..usecases import evaluate_personal_search

    args = ctx.args
    with ctx.progress("personalised search evaluation") as bar:
        out = evaluate_personal_search(ctx.store(), args.dataset, model=args.model,
                                       tastes=args.tastes, query_from=args.query_from, k=args.k,
                                       pool=args.pool, users=args.users, progress=bar)
    lines = [f"Personalised search on '{out['dataset']}' ({out['model']} run {out['run_id']}): "
             f"{out['cases']:,} searches by {out['users']:,} test users, "
             f"{out['queries']} distinct queries ({out['query_from']}), pool {out['pool']}"]
    for name, value in out["ndcg"].items():
        lines.append(f"  {name:<28}{value:.4f}")
    return Result(out, "\n".join(lines))


def catalog_map(ctx: Context) -> Result:
    from ..usecases import catalog_map as run

    args = ctx.args
    with ctx.progress("map") as bar:
        m = run(ctx.store(), args.dataset, vectors=args.vectors, method=args.method,
                clusters=args.clusters, seed=args.seed, image_weight=args.image_weight,
                user_id=args.user, model=args.model, progress=bar)
    lines = [f"Map of {len(m.points):,} products of '{m.dataset}' ({m.vectors} vectors, "
             f"{m.method.upper()}, " + ("from cache" if m.cached else f"{m.seconds:.1f} s")
             + ")" + (f": purity {m.purity:.3f}, NMI {m.nmi:.3f} against article type"
                      if m.purity is not None else "")]
    for r in m.clusters.sort_values("size", ascending=False).to_dict("records"):
        lines.append(f"  cluster {r['cluster'] + 1:>3}  {r['size']:>6,} products  {r['name']}")
    if m.overlay:
        lines.append(f"Overlay: {len(m.overlay['history'])} history items and "
                     f"{len(m.overlay['picks'])} picks of {m.overlay['user_id']}")
    if args.out:
        from recsys.core.files import atomic_path

        with atomic_path(args.out) as tmp:
            m.points.drop(columns=["image_path"], errors="ignore").to_csv(tmp, index=False)
        lines.append(f"Points written to {args.out}")
    return Result(m.to_dict(), "\n".join(lines))


def purity(ctx: Context) -> Result:
    from ..usecases import cluster_purity

    args = ctx.args
    with ctx.progress("purity") as bar:
        frame = cluster_purity(ctx.store(), args.dataset, args.clusters, args.seed,
                               args.image_weight, progress=bar)
    lines = [f"k-means clusters against article type ({frame['items'].max():,} products)",
             f"{'vectors':<10}{'k':>5}{'purity':>9}{'NMI':>8}"]
    for r in frame.to_dict("records"):
        lines.append(f"{r['vectors']:<10}{r['k']:>5}{r['purity']:>9.3f}{r['nmi']:>8.3f}")
    return Result(frame.to_dict("records"), "\n".join(lines),
                  notes=frame.attrs.get("notes", []))


def abtest(ctx: Context) -> Result:
    from recsys.simulation.abtest import METRIC_LABELS

    from ..usecases import ab_test

    args = ctx.args
    with ctx.progress("A/B test") as bar:
        r = ab_test(ctx.store(), args.dataset, args.model_a, args.model_b, k=args.k,
                    shoppers=args.shoppers, visits=args.visits, seed=args.seed,
                    alpha=args.alpha, power=args.power, progress=bar)
    level = f"{1 - r.alpha:.0%}"
    lines = [f"A/B test on '{r.dataset}': A = {r.models['A']} (run {r.runs['A']}), "
             f"B = {r.models['B']} (run {r.runs['B']}); the same {r.population:,} shoppers "
             f"see both arms with the same random draws; top {r.k}, {r.visits} visit(s) each"]
    for metric, c in r.comparisons.items():
        lines.append(f"  {METRIC_LABELS[metric]}: A {c.a.rate:.4f} [{c.a.low:.4f}, "
                     f"{c.a.high:.4f}]  B {c.b.rate:.4f} [{c.b.low:.4f}, {c.b.high:.4f}] "
                     f"({level} CI)")
        lines.append(f"    lift {_pct(c.lift)} [{_pct(c.lift_low)}, {_pct(c.lift_high)}], "
                     f"p = {c.p_value:.4f}{' (significant)' if c.significant else ''}, power "
                     f"{c.power:.0%}; shoppers per arm for {r.power:.0%} power: "
                     f"{c.needed_per_arm if c.needed_per_arm else '-'}; true lift "
                     f"{_pct(c.expected_lift)}")
    lines.append(f"  offline NDCG@{r.k}: A {r.offline['A']:.4f}, B {r.offline['B']:.4f} "
                 f"({_pct(r.verdict.offline_lift)})")
    lines.append(r.verdict.summary)
    return Result(r.to_dict(), "\n".join(lines))
