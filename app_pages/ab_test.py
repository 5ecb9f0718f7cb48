"""A simulated A/B test: two models in front of the simulated shoppers, whose hidden tastes
decide what they click and buy; the result in words, with confidence intervals, significance,
the test size a real experiment would need, and the offline verdict next to it."""

import streamlit as st

from recsys import usecases
from recsys.evaluation.stats import ALPHA
from recsys.models import display_name
from recsys.simulation.abtest import METRIC_LABELS
from ui import charts, components, jobs, resources, words

RESULT = "ab_result"
PENDING = "ab_job"          # the id of the A/B job this session started

components.page_setup("A/B test", "Would shoppers click more with model B than with model A? "
                                  "The simulated shoppers, whose tastes only the simulator "
                                  "knows, each see both models' picks in two parallel worlds "
                                  "with the same luck, and click and buy as the simulator's "
                                  "choice model says.")
dataset = components.require_dataset()
store = resources.get_store()
users = resources.users(dataset)
models = [m for m in usecases.list_models(store, dataset) if m.get("applies", True)]
names = [m["name"] for m in models]
runs = usecases.list_runs(store, dataset)
trained = set(runs["model"]) if len(runs) else set()


def label(name: str) -> str:
    return f"{display_name(name)}" + ("" if name in trained else " (trains first)")


with st.container(border=True):
    row = st.columns([2, 2, 1, 1])
    default_b = usecases.default_model(store, dataset)
    model_a = row[0].selectbox("Model A (control)", names, format_func=label, key="ab_a",
                               index=names.index("popularity") if "popularity" in names else 0)
    model_b = row[1].selectbox("Model B (challenger)", names, format_func=label, key="ab_b",
                               index=names.index(default_b) if default_b in names else 0)
    k = row[2].slider("Products shown", 3, 30, 10, key="ab_k")
    visits = row[3].slider("Visits per shopper", 1, 20, 1, key="ab_visits",
                           help="More visits, more clicks to count.")
    with st.expander("Test settings"):
        cols = st.columns(4)
        total = len(users)
        if total > 4:
            shoppers = cols[0].slider("Shoppers", 4, total, total, key="ab_shoppers")
        else:                       # too few to sample from: all of them take part
            shoppers = total
            cols[0].caption(f"All {total} shoppers take part.")
        alpha = cols[1].select_slider("Significance level", [0.01, ALPHA, 0.1], ALPHA,
                                      key="ab_alpha")
        power = cols[2].select_slider("Power for the sample size", [0.8, 0.9, 0.95], 0.8,
                                      key="ab_power")
        seed = cols[3].number_input("Seed", 0, 10_000, 0, key="ab_seed",
                                    help="Another seed: other random draws (and another sample of "
                                         "shoppers when not all take part).")
    run = st.button("Run the test", type="primary", icon=":material/science:")

if run:                  # a background job: leaving the page does not stop it
    st.session_state[PENDING] = jobs.start(
        "ab_test", model_a, model_b, dataset=dataset, k=k,
        shoppers=shoppers if shoppers < total else None, visits=visits, seed=int(seed),
        alpha=alpha, power=power)
done = jobs.follow_pending(PENDING, "Running the A/B test", "The test")
if done is not None:
    st.session_state[RESULT] = (done.dataset, done.result)

stored = st.session_state.get(RESULT)
if not stored or stored[0] != dataset:
    st.info("Choose two models and run the test. The first run replays the simulation to "
            "recover the shoppers' tastes (seconds on the demo, ~20 s on Myntra).",
            icon=":material/science:")
    st.stop()
result = stored[1]
name_a, name_b = display_name(result.models["A"]), display_name(result.models["B"])
clicks = result.comparisons["click"]
buys = result.comparisons["purchase"]
level = f"{1 - result.alpha:.0%}"


def headline() -> str:
    """The result in one paragraph a stakeholder reads: clicks and purchases, each with its
    significance (`ui.words.ab_headline`)."""
    if clicks.lift is None:
        return "Nobody clicked in one of the arms: run with more shoppers or visits."
    return words.ab_headline(result, name_a, name_b)


st.markdown(headline())
components.notes(result.notes)
cols = st.columns(3)
for col, (metric, comp) in zip(cols, result.comparisons.items()):
    # a difference chance could explain is grey and says so, never a red or green verdict
    delta = None if comp.lift is None else \
        f"{comp.lift:+.1%} (B vs A)" + ("" if comp.significant else ", not significant")
    col.metric(METRIC_LABELS[metric].capitalize(), f"{comp.b.rate:.2%} vs {comp.a.rate:.2%}",
               delta, delta_color="normal" if comp.significant else "off", help=f"B vs A per visit; lift {level} CI "
                           f"{'-' if comp.lift_low is None else f'{comp.lift_low:+.1%}'} to "
                           f"{'-' if comp.lift_high is None else f'{comp.lift_high:+.1%}'}; "
                           f"p = {comp.p_value:.4f}")

left, right = st.columns(2, gap="large")
with left:
    rows = []
    for metric, comp in result.comparisons.items():
        for arm, est, nm in (("A", comp.a, name_a), ("B", comp.b, name_b)):
            rows.append({"metric": METRIC_LABELS[metric], "arm": arm, "rate": est.rate,
                         "low": est.low, "high": est.high, "label": f"{arm}: {nm}"})
    st.plotly_chart(charts.ab_rates(rows), width="stretch")
with right:
    online = []
    if clicks.lift is not None:
        online.append({"what": "clicks (this test)", "lift": clicks.lift})
    if clicks.expected_lift is not None:
        online.append({"what": "clicks (true, no noise)", "lift": clicks.expected_lift})
    if buys.lift is not None:
        online.append({"what": "purchases (this test)", "lift": buys.lift})
    if online:
        st.plotly_chart(charts.offline_online(online, "Online: B compared with A (shoppers)"),
                        width="stretch")
    if result.verdict.offline_lift is not None:
        st.plotly_chart(charts.offline_online(
            [{"what": f"{words.label('ndcg')} in the top {result.k}",
              "lift": result.verdict.offline_lift}],
            "Offline: B compared with A (held-out history)"), width="stretch")

st.subheader("Offline vs online")
if result.verdict.disagree:
    st.warning(result.verdict.summary, icon=":material/compare_arrows:")
elif result.verdict.agree or result.verdict.truth_agree:
    st.success(result.verdict.summary, icon=":material/check_circle:")
else:
    st.info(result.verdict.summary, icon=":material/help:")

with st.expander("All numbers"):
    table = []
    for metric, comp in result.comparisons.items():
        table.append({
            "metric": METRIC_LABELS[metric], "A": comp.a.rate, "B": comp.b.rate,
            f"A {level} CI": f"{comp.a.low:.4f} – {comp.a.high:.4f}",
            f"B {level} CI": f"{comp.b.low:.4f} – {comp.b.high:.4f}",
            "lift": comp.lift, f"lift {level} CI": (
                "-" if comp.lift_low is None else f"{comp.lift_low:+.1%} – {comp.lift_high:+.1%}"),
            "p-value": comp.p_value, "power": comp.power,
            f"shoppers/arm for {result.power:.0%} power": comp.needed_per_arm,
            "true A": comp.a.expected, "true B": comp.b.expected,
            "true lift": comp.expected_lift})
    st.dataframe(table, hide_index=True)
    st.caption(f"Arms: A = {name_a} (run {result.runs['A']}, {result.shoppers['A']:,} "
               f"shoppers), B = {name_b} (run {result.runs['B']}, {result.shoppers['B']:,} "
               f"shoppers); top {result.k}, {result.visits} visit(s) each, seed {result.seed}. "
               "Paired t-test over shoppers (each one saw both arms with the same random "
               "draws); shoppers/arm: what a live, split test would need; \"true\" rates are "
               "the choice model's "
               "probabilities, which a real test never sees. Conversion = purchases per visit "
               f"({buys.b.rate:.2%} vs {buys.a.rate:.2%}).")
