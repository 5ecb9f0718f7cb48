"""A simulated A/B test between two recommenders, and the statistics to read it.

The simulated shoppers' hidden tastes (`recsys.simulation.shoppers.replay`) decide what they do: each
shopper sees an arm's top-K (their history left out) on each of `visits` visits, and clicks,
carts and buys according to the simulator's own choice model
(`recsys.simulation.shoppers.shown_list_choice`).

**Design: every shopper in both arms, with the same luck** (`simulate_both_arms`). A live test
must split its shoppers, so two arms differ by who is in them as well as by what they see;
a simulator can show both lists to the same shopper, in two parallel worlds, and it uses the
same random numbers in both (common random numbers: one seeded generator per shopper, whose
draws decide that shopper's visits in either arm). So the arms see the same population and
the same seed structure: the same model on both arms gives exactly the same clicks (never
"significant"), and a real difference stands out against far less noise than in a split
test. (Before issue 19 the shoppers were split at random and their visits drawn from one
stream: the same model on both arms came out "significant +145%" at seed 0, 6 of 40 seeds
significant.)

**Analysis: the shopper is the unit** (visits of one shopper are not independent: they share
her tastes). An arm's rate is the mean of its shoppers' per-visit rates (every shopper has the
same number of visits):

* confidence intervals of each arm: mean ± t * standard error over the shoppers;
* significance: paired t-test on the per-shopper differences B - A (`scipy.stats.ttest_rel`;
  p = 1 when no shopper's outcome differs);
* relative lift B vs A with a paired bootstrap interval over shoppers (`recsys.evaluation.stats`);
* power of this test against the observed difference, from the per-shopper differences;
* `needed_per_arm`: shoppers per arm a *live* split test would need to detect the difference
  (two-sided alpha, power 1 - beta) from the per-shopper variances,
  n = (z_{1-a/2} + z_{1-b})^2 (var_A + var_B) / d^2 - a live test cannot pair its shoppers;
* `expected_*`: the noise-free rates from the choice probabilities themselves, over the same
  shoppers (what an infinitely long test would find), which a real test never sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from recsys.core.errors import RecsysError
from recsys.evaluation.stats import ALPHA, is_significant
from recsys.simulation.shoppers import HiddenTastes, SimulationConfig, shown_list_choice

METRICS = ("click", "cart", "purchase")
METRIC_LABELS = {"click": "click-through rate", "cart": "add-to-cart rate",
                 "purchase": "conversion (purchase) rate"}
DEFAULT_ALPHA = ALPHA
DEFAULT_POWER = 0.8
DESIGN = ("every shopper sees both arms, with the same random draws in each (common random "
          "numbers); paired test over shoppers")


def format_p(p_value: float) -> str:
    """A p-value as people read it: "p < 0.001" for tiny ones, else three decimals."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


class ExperimentError(RecsysError):
    """A simulated experiment that cannot be run as asked."""


@dataclass
class Visits:
    """Per shopper of one arm: drawn counts over their visits and expected (probability) sums
    of one visit."""

    shoppers: np.ndarray
    visits: int
    counts: dict[str, np.ndarray]
    expected: dict[str, np.ndarray]


def _visits_of(shown: np.ndarray, p: dict[str, np.ndarray], draws: np.ndarray,
               purchase_rate: float) -> tuple[int, int, int]:
    """Clicks, carts and purchases of one shopper's visits to one list, decided by her own
    uniform `draws` (visits x 3: which product is clicked, whether it is carted, whether the
    cart is bought) through the choice probabilities `p`: the same draws and the same list
    give the same outcome."""
    p_click = np.clip(p["click"], 0.0, None)
    edges = np.cumsum(p_click)
    if edges[-1] > 1.0:                       # rounding: the probabilities sum to 1 at most
        edges /= edges[-1]
    chosen = np.searchsorted(edges, draws[:, 0], side="right")
    clicked = chosen < len(shown)
    chosen = chosen[clicked]
    cart_given_click = np.divide(p["cart"][chosen], p_click[chosen],
                                 out=np.zeros(len(chosen)), where=p_click[chosen] > 0)
    carted = draws[clicked, 1] < cart_given_click
    bought = carted & (draws[clicked, 2] < purchase_rate)
    return int(clicked.sum()), int(carted.sum()), int(bought.sum())


def simulate_both_arms(lists: Mapping[str, Mapping[int, np.ndarray]], hidden: HiddenTastes,
                       config: SimulationConfig, visits: int, seed: int = 0
                       ) -> dict[str, Visits]:
    """Every shopper (rows of `hidden`, the keys of each arm's `lists`: the same in every arm)
    shown each arm's list (item positions of `hidden.item_ids`, best first) on `visits`
    visits; each visit at most one click, then a cart and a purchase with their conditional
    probabilities. A shopper's draws come from her own generator (seeded by `seed` and her
    row), and the same draws decide her visits in every arm (common random numbers)."""
    if visits < 1:
        raise ExperimentError("Each shopper needs at least one visit.")
    arms = list(lists)
    shoppers = np.array(sorted(lists[arms[0]]), dtype=np.int64)
    if any(sorted(lists[arm]) != list(shoppers) for arm in arms):
        raise ExperimentError("Both arms must show a list to the same shoppers.")
    out = {arm: Visits(shoppers, visits, {m: np.zeros(len(shoppers)) for m in METRICS},
                       {m: np.zeros(len(shoppers)) for m in METRICS}) for arm in arms}
    for row, user in enumerate(shoppers):
        draws = np.random.default_rng([int(seed), int(user)]).random((visits, 3))
        for arm in arms:
            shown = np.asarray(lists[arm][int(user)], dtype=np.int64)
            if not len(shown):
                continue
            p = shown_list_choice(hidden.affinity[user], hidden.type_idx,
                                  hidden.type_pref[user], shown, config)
            result = out[arm]
            for m in METRICS:
                result.expected[m][row] = float(p[m].sum())
            got = _visits_of(shown, p, draws, config.purchase_rate)
            for m, n in zip(METRICS, got):
                result.counts[m][row] = n
    return out


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
    """B against A on one metric, over the same shoppers: difference, relative lift with its
    interval, the paired t-test on per-shopper differences, this test's power, and the
    shoppers per arm a live (split) test would need for this difference."""

    metric: str
    a: Estimate
    b: Estimate
    difference: float
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    p_value: float
    significant: bool
    power: float                  # of this (paired) test against the observed difference
    needed_per_arm: int | None    # a live split test: shoppers per arm at the observed diff.
    expected_lift: float | None   # noise-free
    needed_expected: int | None   # a live split test: shoppers per arm, noise-free diff.
    test: str = "paired t-test on per-shopper differences"

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
            power: float = DEFAULT_POWER, seed: int = 0) -> Comparison:
    """Per-shopper rates of arms A and B, row i the same shopper in both, compared (see the
    module docstring): the p-value of the paired t-test on the differences (1 when every
    difference is 0), the lift's interval from a paired bootstrap over shoppers (`seed`)."""
    from recsys.evaluation.stats import paired_comparison

    a_rates = np.asarray(a_rates, dtype=np.float64)
    b_rates = np.asarray(b_rates, dtype=np.float64)
    if a_rates.shape != b_rates.shape:
        raise ExperimentError("Both arms must hold the same shoppers, in the same order.")
    a, b = estimate(a_rates, a_expected, alpha), estimate(b_rates, b_expected, alpha)
    diff = b.rate - a.rate
    n = len(a_rates)
    differences = b_rates - a_rates
    if n < 2 or not np.any(differences):
        p_value = 1.0 if not np.any(differences) else float("nan")
        lift_low = lift_high = None
    else:
        paired = paired_comparison(b_rates, a_rates, level=1.0 - alpha, seed=seed)
        p_value = float(paired.p_value[0])
        lift_low, lift_high = float(paired.gain_low[0]), float(paired.gain_high[0])
    lift = b.rate / a.rate - 1.0 if a.rate > 0 and b.rate > 0 else None
    if lift is None:
        lift_low = lift_high = None
    elif lift_low is None:                          # no shopper's outcome differs
        lift_low = lift_high = lift
    if not np.isfinite(p_value):
        p_value = 1.0
    expected_lift = b.expected / a.expected - 1.0 if a.expected > 0 else None
    se_diff = float(np.std(differences, ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return Comparison(metric, a, b, diff, lift, lift_low, lift_high, p_value,
                      is_significant(p_value, alpha), achieved_power(diff, se_diff, alpha),
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
    offline_tie = round(ndcg_a, 4) == round(ndcg_b, 4)   # equal as printed: no direction
    if offline_tie:
        words = [f"Offline, the two rank the held-out interactions equally well (NDCG@{k} "
                 f"{ndcg_a:.4f} for both)."]
    else:
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
        agree = None if offline_tie else (online > 0) == (ndcg_b > ndcg_a)
        words.append(f"Online, {name_b if online > 0 else name_a} gets {_more(online):.1%} "
                     f"more clicks per visit ({format_p(clicks.p_value)}, significant): "
                     + ("offline could not tell them apart." if agree is None else
                        "the same answer." if agree else "the opposite answer."))
    truth_agree = None
    if truth is not None and offline_tie:
        words.append("With unlimited shoppers (the simulator's noise-free rates), "
                     + (f"the two would be {abs(truth):.1%} apart in clicks, practically equal."
                        if abs(truth) < TIE else
                        f"{name_b if truth > 0 else name_a} would get {_more(truth):.1%} more "
                        "clicks: a difference offline does not show."))
    elif truth is not None and offline is not None:
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
    design: str = DESIGN
    notes: list[str] = field(default_factory=list)

    @property
    def population(self) -> int:
        """Distinct shoppers in the test (each one is in both arms)."""
        return max(self.shoppers.values()) if self.shoppers else 0

    def significant(self) -> dict[str, bool]:
        """Each metric's own verdict: {"click": ..., "cart": ..., "purchase": ...}."""
        return {m: c.significant for m, c in self.comparisons.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "models": self.models, "runs": self.runs,
                "k": self.k, "visits": self.visits, "shoppers": self.shoppers,
                "population": self.population, "design": self.design,
                "alpha": self.alpha, "power": self.power, "seed": self.seed,
                "metrics": {m: c.to_dict() for m, c in self.comparisons.items()},
                "significant": self.significant(),
                "offline_ndcg": self.offline,
                "verdict": {**asdict(self.verdict), "disagree": self.verdict.disagree},
                "notes": self.notes}
