"""A simulated A/B test between two recommenders, and the statistics to read it.

The simulated shoppers' hidden tastes (`recsys.simulate.replay`) decide what they do: each
shopper is randomly assigned to arm A or B, sees that arm's top-K (their history left out) on
each of `visits` visits, and clicks, carts and buys according to the simulator's own choice
model (`recsys.simulate.shown_list_choice`). Because every shopper gets the same number of
visits, an arm's click-through rate is the mean of its shoppers' per-visit click rates; the
shopper is the unit of randomisation and of analysis:

* confidence intervals: mean ± t * standard error over the arm's shoppers;
* significance: Welch's two-sample t-test (`scipy.stats.ttest_ind`, unequal variances);
* relative lift B vs A with a delta-method interval on the log of the ratio;
* power: shoppers per arm a test needs to detect a given difference (two-sided alpha, power
  1 - beta) from the per-shopper variances, n = (z_{1-a/2} + z_{1-b})^2 (var_A + var_B) / d^2;
* `expected_*`: the noise-free rates from the choice probabilities themselves (what an
  infinitely large test would find), which a real test never sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from .errors import RecsysError
from .simulate import HiddenTastes, SimulationConfig, shown_list_choice

METRICS = ("click", "cart", "purchase")
METRIC_LABELS = {"click": "click-through rate", "cart": "add-to-cart rate",
                 "purchase": "conversion (purchase) rate"}
DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.8


def format_p(p_value: float) -> str:
    """A p-value as people read it: "p < 0.001" for tiny ones, else three decimals."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


class ExperimentError(RecsysError):
    """A simulated experiment that cannot be run as asked."""


def assign_arms(n: int, seed: int = 0) -> np.ndarray:
    """A random half of `n` shoppers in arm B (True), the rest in A; sizes differ by at most
    one."""
    if n < 4:
        raise ExperimentError("An A/B test needs at least 4 shoppers (2 per arm).")
    arms = np.zeros(n, dtype=bool)
    arms[np.random.default_rng(seed).permutation(n)[: n // 2]] = True
    return arms


@dataclass
class Visits:
    """Per shopper of one arm: drawn counts over their visits and expected (probability) sums
    of one visit."""

    shoppers: np.ndarray
    visits: int
    counts: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]


def simulate_arm(lists: Mapping[int, np.ndarray], hidden: HiddenTastes,
                 config: SimulationConfig, visits: int, rng: np.random.Generator) -> Visits:
    """Shoppers (rows of `hidden`) each shown their list (item positions of `hidden.item_ids`,
    best first) on `visits` visits; each visit at most one click, drawn from the choice
    probabilities, then a cart and a purchase with their conditional probabilities."""
    if visits < 1:
        raise ExperimentError("Each shopper needs at least one visit.")
    shoppers = np.array(sorted(lists), dtype=np.int64)
    counts = {m: np.zeros(len(shoppers)) for m in METRICS}
    expected = {m: np.zeros(len(shoppers)) for m in METRICS}
    for row, user in enumerate(shoppers):
        shown = np.asarray(lists[int(user)], dtype=np.int64)
        if not len(shown):
            continue
        p = shown_list_choice(hidden.affinity[user], hidden.type_idx, hidden.type_pref[user],
                              shown, config)
        for m in METRICS:
            expected[m][row] = float(p[m].sum())
        p_click = np.append(p["click"], max(0.0, 1.0 - float(p["click"].sum())))
        p_click /= p_click.sum()
        chosen = rng.choice(len(p_click), size=visits, p=p_click)
        chosen = chosen[chosen < len(shown)]
        carted = chosen[rng.random(len(chosen)) < p["cart"][chosen] / p["click"][chosen]]
        bought = rng.random(len(carted)) < config.purchase_rate
        counts["click"][row] = len(chosen)
        counts["cart"][row] = len(carted)
        counts["purchase"][row] = int(bought.sum())
    return Visits(shoppers, visits, counts, expected)


@dataclass
class Estimate:
    """A rate per visit with its confidence interval, from per-shopper rates."""

    rate: float
    low: float
    high: float
    std_error: float
    variance: float            # per-shopper variance of the rate (for power)
    expected: float            # noise-free rate from the choice probabilities

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def estimate(per_shopper: np.ndarray, expected: np.ndarray, alpha: float = DEFAULT_ALPHA
             ) -> Estimate:
    """Mean of per-shopper rates with a t interval at level 1 - alpha."""
    from scipy import stats

    n = len(per_shopper)
    mean = float(np.mean(per_shopper)) if n else 0.0
    var = float(np.var(per_shopper, ddof=1)) if n > 1 else 0.0
    se = float(np.sqrt(var / n)) if n > 1 else 0.0
    t = float(stats.t.ppf(1 - alpha / 2, max(n - 1, 1)))
    return Estimate(mean, max(0.0, mean - t * se), mean + t * se, se, var,
                    float(np.mean(expected)) if n else 0.0)


@dataclass
class Comparison:
    """B against A on one metric: difference, relative lift with its interval, Welch's t-test
    and the shoppers per arm a test needs for this difference."""

    metric: str
    a: Estimate
    b: Estimate
    difference: float
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    p_value: float
    significant: bool
    power: float                  # of this test size against the observed difference
    needed_per_arm: int | None    # shoppers per arm for `target_power` at the observed diff.
    expected_lift: float | None   # noise-free
    needed_expected: int | None   # shoppers per arm for the noise-free difference

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["a"], out["b"] = self.a.to_dict(), self.b.to_dict()
        return out


def needed_per_arm(difference: float, var_a: float, var_b: float,
                   alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER) -> int | None:
    """Shoppers per arm to detect `difference` with a two-sided test at `alpha` with `power`
    (None when the difference is 0: no test size finds it)."""
    from scipy import stats

    if abs(difference) < 1e-12:
        return None
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return int(np.ceil(z ** 2 * (var_a + var_b) / difference ** 2))


def achieved_power(difference: float, se_diff: float, alpha: float = DEFAULT_ALPHA) -> float:
    """Probability that a two-sided z-test at `alpha` with this standard error of the
    difference rejects when the true difference is `difference`."""
    from scipy import stats

    if se_diff <= 0:
        return 1.0 if abs(difference) > 0 else alpha
    z = stats.norm.ppf(1 - alpha / 2)
    shift = abs(difference) / se_diff
    return float(stats.norm.sf(z - shift) + stats.norm.cdf(-z - shift))


def compare(metric: str, a_rates: np.ndarray, b_rates: np.ndarray, a_expected: np.ndarray,
            b_expected: np.ndarray, alpha: float = DEFAULT_ALPHA,
            power: float = DEFAULT_POWER) -> Comparison:
    """Per-shopper rates of arms A and B compared (see the module docstring)."""
    from scipy import stats

    a, b = estimate(a_rates, a_expected, alpha), estimate(b_rates, b_expected, alpha)
    diff = b.rate - a.rate
    if a.variance == 0 and b.variance == 0:
        p_value = 1.0 if diff == 0 else 0.0
    else:
        p_value = float(stats.ttest_ind(b_rates, a_rates, equal_var=False).pvalue)
    lift = lift_low = lift_high = None
    if a.rate > 0 and b.rate > 0:
        lift = b.rate / a.rate - 1.0
        se_log = np.sqrt((a.std_error / a.rate) ** 2 + (b.std_error / b.rate) ** 2)
        z = stats.norm.ppf(1 - alpha / 2)
        lift_low = float(np.exp(np.log(b.rate / a.rate) - z * se_log) - 1.0)
        lift_high = float(np.exp(np.log(b.rate / a.rate) + z * se_log) - 1.0)
    expected_lift = b.expected / a.expected - 1.0 if a.expected > 0 else None
    se_diff = float(np.sqrt(a.std_error ** 2 + b.std_error ** 2))
    return Comparison(metric, a, b, diff, lift, lift_low, lift_high, p_value,
                      bool(p_value < alpha), achieved_power(diff, se_diff, alpha),
                      needed_per_arm(diff, a.variance, b.variance, alpha, power),
                      expected_lift,
                      needed_per_arm(b.expected - a.expected, a.variance, b.variance, alpha,
                                     power))


TIE = 0.02
"""A noise-free lift smaller than this (2%) is no practical difference."""
BIG_OFFLINE = 0.10
"""An offline NDCG difference at least this large (10%) promises a difference worth having."""


@dataclass
class Verdict:
    """Offline (NDCG) and online (simulated clicks) answers to "is B better than A?".

    `agree` compares the offline difference with this test's significant result (None when
    the test cannot tell); `truth_agree` with the noise-free lift the simulator knows (None
    without one). `disagree` is True when either of them disagrees."""

    offline_lift: float | None
    online_lift: float | None
    online_significant: bool
    agree: bool | None
    truth_lift: float | None
    truth_agree: bool | None
    summary: str

    @property
    def disagree(self) -> bool:
        return self.agree is False or self.truth_agree is False


def _more(lift: float) -> float:
    """How much more the leading arm gets, from B's lift over A."""
    return lift if lift > 0 else 1.0 / (1.0 + lift) - 1.0


def verdict(name_a: str, name_b: str, ndcg_a: float, ndcg_b: float,
            clicks: Comparison, k: int) -> Verdict:
    """Whether the offline NDCG@k difference, this test's click-through lift and the
    noise-free lift point the same way, in words."""
    offline = ndcg_b / ndcg_a - 1.0 if ndcg_a > 0 else None
    online, truth = clicks.lift, clicks.expected_lift
    better_off = name_b if ndcg_b > ndcg_a else name_a
    words = [f"Offline, {better_off} ranks the held-out interactions better (NDCG@{k} "
             f"{max(ndcg_a, ndcg_b):.4f} vs {min(ndcg_a, ndcg_b):.4f}"
             + (f", {abs(offline):.1%} apart)." if offline is not None else ").")]
    agree = None
    if online is None:
        words.append("Online, no shopper clicked in one of the arms.")
    elif not clicks.significant:
        needed = (f" A test would need about {clicks.needed_per_arm:,} shoppers per arm to "
                  "tell a difference this size." if clicks.needed_per_arm else "")
        words.append(f"Online, {name_b if online > 0 else name_a} is ahead by "
                     f"{_more(online):.1%} in clicks per visit, which is not significant "
                     f"({format_p(clicks.p_value)}): this test cannot tell them apart." + needed)
    else:
        agree = (online > 0) == (ndcg_b > ndcg_a)
        words.append(f"Online, {name_b if online > 0 else name_a} gets {_more(online):.1%} "
                     f"more clicks per visit ({format_p(clicks.p_value)}, significant): "
                     + ("the same answer." if agree else "the opposite answer."))
    truth_agree = None
    if truth is not None and offline is not None:
        if abs(truth) < TIE:
            truth_agree = abs(offline) < BIG_OFFLINE
            words.append(f"The simulator knows the shoppers' tastes: with unlimited shoppers "
                         f"the two would be {abs(truth):.1%} apart in clicks, practically "
                         "equal" + (", although offline they look far apart." if not
                                    truth_agree else "."))
        else:
            truth_agree = (truth > 0) == (offline > 0)
            words.append(f"With unlimited shoppers (the simulator's noise-free rates), "
                         f"{name_b if truth > 0 else name_a} would get {_more(truth):.1%} "
                         "more clicks: " + ("the direction offline predicts." if truth_agree
                                            else "the opposite of what offline predicts."))
    if agree is False or truth_agree is False:
        words.append("Offline and online disagree here: NDCG rewards predicting the held-out "
                     "interactions, while shoppers click what matches their tastes.")
    return Verdict(offline, online, bool(clicks.significant), agree, truth, truth_agree,
                   " ".join(words))


@dataclass
class ABResult:
    """Everything an A/B test page or command shows."""

    dataset: str
    models: dict[str, str]              # arm -> model name
    runs: dict[str, int]
    k: int
    visits: int
    shoppers: dict[str, int]            # arm -> shoppers
    comparisons: dict[str, Comparison]
    offline: dict[str, float]           # arm -> NDCG@k on the test split
    verdict: Verdict
    alpha: float
    power: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "models": self.models, "runs": self.runs,
                "k": self.k, "visits": self.visits, "shoppers": self.shoppers,
                "alpha": self.alpha, "power": self.power, "seed": self.seed,
                "metrics": {m: c.to_dict() for m, c in self.comparisons.items()},
                "offline_ndcg": self.offline,
                "verdict": {**asdict(self.verdict), "disagree": self.verdict.disagree}}
