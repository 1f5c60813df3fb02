"""Tests of the straight-through chapter: its lab (gumbel_book.labs.straight_through), its figures
(gumbel_book.figures.straight_through) and its exercise checks (gumbel_book.exercises.straight_through).

The core estimators they are built on are tested in tests/unit/test_estimators.py. Statistical tests use fixed
seeds. Unless stated otherwise a mean is compared with a per-coordinate z-test at Z = 4.5 after a Bonferroni
correction over the coordinates: overall alpha < 1e-3 per test.
"""

from __future__ import annotations

import pytest
import torch

from gumbel_book.estimators import (
    LABELS,
    TAU_FREE,
    exact_grad,
    expected_value,
    linear_objective,
    quadratic_objective,
    sample_grads,
    target_objective,
)
from gumbel_book.estimators import (
    STRAIGHT_THROUGH_ESTIMATORS as ESTIMATORS,
)
from gumbel_book.exercises.straight_through import check_straight_through_layer, exact_mean
from gumbel_book.figures.straight_through import (
    BIAS_GROUPS,
    bias_figure,
    bias_table_html,
    cosine_figure,
    edge_figure,
    edge_profile,
    lab_table_html,
    race_figure,
    race_table_html,
    ratio_table_html,
)
from gumbel_book.labs.straight_through import (
    NOISY_AT_LOW_TAU,
    bias_against_tau,
    lab_table,
    optimization_race,
    race_summary,
    run_lab,
    toy_problems,
    variance_ratio,
    zero_temperature_limit,
)
from gumbel_book.straight_through import straight_through_softmax

Z = 4.5
PROBLEMS = toy_problems("cpu")


def mean_z(grads: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-coordinate z-scores of the mean of the rows of ``grads`` against ``target``."""
    se = (grads.var(0) / grads.shape[0]).sqrt().clamp(min=1e-15)
    return (grads.mean(0) - target).abs() / se


# ------------------------------------------------------------------------------------------ toy problems


def test_toy_problems():
    assert list(PROBLEMS) == ["linear", "quadratic", "target", "target100"]
    assert all(p.logits.shape == (8,) for k, p in PROBLEMS.items() if k != "target100")
    assert PROBLEMS["target100"].logits.shape == (100,)
    assert all(PROBLEMS[k].name == k and PROBLEMS[k].title for k in PROBLEMS)
    eye = torch.eye(8, dtype=torch.float64)
    assert torch.equal(PROBLEMS["target"].f(eye), target_objective(3, 8)(eye))


# ------------------------------------------------------------------------------------------ exact means


@pytest.mark.parametrize("problem", ["linear", "quadratic"])
def test_reinmax_at_tau_one_is_exact_in_expectation_for_quadratic_f(problem):
    p = PROBLEMS[problem]
    g = exact_grad(p.logits, p.f)
    assert torch.allclose(exact_mean("reinmax", p.logits, p.f, 1.0), g, atol=1e-13)
    assert (exact_mean("reinmax", p.logits, p.f, 2.0) - g).norm() > 0.1 * g.norm()


def test_plain_st_biased_for_quadratic_f():
    p = PROBLEMS["quadratic"]
    g = exact_grad(p.logits, p.f)
    assert (exact_mean("straight_through", p.logits, p.f) - g).norm() > 0.05 * g.norm()


@pytest.mark.parametrize("name", ["straight_through", "reinmax"])
def test_exact_mean_matches_monte_carlo(name):
    p = PROBLEMS["target"]
    grads = sample_grads(name, p.logits, p.f, 20_000, tau=1.5, generator=torch.Generator().manual_seed(2))[0]
    assert bool((mean_z(grads, exact_mean(name, p.logits, p.f, 1.5)) < Z).all())


@pytest.mark.parametrize("tau", [0.1, 1.0, 5.0])
def test_st_and_reinmax_biased_on_pick_the_target(tau):
    p = PROBLEMS["target"]
    g = exact_grad(p.logits, p.f)
    for name in ("straight_through", "reinmax"):
        assert float((exact_mean(name, p.logits, p.f, tau) - g).norm() / g.norm()) > 0.3


# ------------------------------------------------------------------------------------------ the lab


@pytest.fixture(scope="module")
def small_lab():
    problems = {k: PROBLEMS[k] for k in ("linear", "target")}
    return run_lab(problems, taus=(0.5, 1.0, 2.0), ns=(2, 8, 32), repeats=64, seed=1)


def test_lab_shapes_and_ranges(small_lab):
    result = small_lab
    assert set(result.bias) == {"linear", "target"}
    for p in result.bias:
        assert list(result.bias[p]) == list(ESTIMATORS)
        for e in ESTIMATORS:
            assert result.bias[p][e].shape == (3,) and result.bias_se[p][e].shape == (3,)
            assert result.variance[p][e].shape == (3,) and result.variance_se[p][e].shape == (3,)
            assert result.std[p][e].shape == (3, 3) and result.cosine[p][e].shape == (3, 3)
            assert result.cosine_se[p][e].shape == (3, 3) and bool((result.cosine_se[p][e] >= 0).all())
            assert bool((result.cosine[p][e].abs() <= 1 + 1e-12).all())
            assert bool((result.bias[p][e] >= 0).all()) and bool((result.std[p][e] >= 0).all())
            if e in TAU_FREE:
                assert torch.equal(result.bias[p][e], result.bias[p][e][:1].expand(3))


def test_lab_measurements_agree_with_theory(small_lab):
    result = small_lab
    # unbiased estimators show a bias at their noise level; plain ST on a linear f has none at all
    for e in ("reinforce", "reinforce_baseline"):
        assert bool((result.bias["linear"][e] < 4 * result.bias_se["linear"][e]).all())
    assert float(result.bias["linear"]["straight_through"].max()) < 1e-12
    assert float(result.std["linear"]["straight_through"].max()) < 1e-12
    # ST-Gumbel-Softmax is biased on the linear problem, by far more than its noise level
    assert bool((result.bias["linear"]["st_gumbel_softmax"] > 5 * result.bias_se["linear"]["st_gumbel_softmax"]).all())
    # averaging n i.i.d. estimates divides the spread by about sqrt(n): 32 vs 2 samples -> factor 4
    for e in ("reinforce", "st_gumbel_softmax", "reinmax", "gumbel_rao"):
        ratio = result.std["target"][e][:, 0] / result.std["target"][e][:, 2]
        assert bool(((ratio > 2.8) & (ratio < 5.7)).all()), (e, ratio)


def test_single_sample_variance_matches_the_spread_of_n_sample_estimates(small_lab):
    """Var of one sample / n is the variance of an n-sample mean: the two measurements agree within their
    sampling error (64 repeats: relative error of a variance about sqrt(2 / 63) = 18%, so a 60% band is 3.3
    errors); plain ST on the linear problem has no variance at all."""
    result = small_lab
    assert result.samples == 64 * 32
    for p in result.bias:
        for e in ("reinforce", "st_gumbel_softmax", "gumbel_rao"):
            for j, n in enumerate(result.ns):
                ratio = result.std[p][e][:, j] ** 2 * n / result.variance[p][e]
                assert bool(((ratio > 0.4) & (ratio < 1.6)).all()), (p, e, n, ratio)
    assert float(result.variance["linear"]["straight_through"].max()) < 1e-20


def test_variance_ratio_and_its_error(small_lab):
    ratio, se = variance_ratio(small_lab, "target")
    va, vb = small_lab.variance["target"]["gumbel_rao"], small_lab.variance["target"]["st_gumbel_softmax"]
    assert torch.allclose(ratio, va / vb)
    assert bool((se > 0).all()) and bool((se < 0.5 * ratio).all())
    # Rao-Blackwellisation: Gumbel-Rao's variance is below ST-GS's, by far more than the error at tau = 0.5
    assert float(ratio[0] + 4 * se[0]) < 1
    same, same_se = variance_ratio(small_lab, "target", "reinmax", "reinmax")
    v, sv = small_lab.variance["target"]["reinmax"], small_lab.variance_se["target"]["reinmax"]
    assert torch.equal(same, torch.ones(3)) and torch.allclose(same_se, 2**0.5 * sv / v)


def test_reinforce_cosine_grows_with_samples(small_lab):
    for p in ("linear", "target"):
        for e in ("reinforce", "reinforce_baseline"):
            cos = small_lab.cosine[p][e][0]
            assert bool((cos[1:] > cos[:-1]).all()), (p, e, cos)


@pytest.mark.slow
def test_k100_cosines():
    """The chapter's K = 100 remarks: REINFORCE stays far from the exact direction even with 64 samples, plain
    ST points the right way, ReinMax does not (at tau = 1, n = 16)."""
    result = run_lab(
        {"target100": PROBLEMS["target100"]},
        taus=(1.0,),
        ns=(2, 16, 64),
        repeats=40,
        estimators=("reinforce", "reinforce_baseline", "straight_through", "reinmax"),
        seed=3,
    )
    cos = {e: result.cosine["target100"][e][0] for e in result.cosine["target100"]}
    assert float(cos["reinforce"][2]) < 0.6 and float(cos["reinforce_baseline"][2]) < 0.6
    assert float(cos["straight_through"][1]) > 0.8
    assert float(cos["reinmax"][1]) < 0.5


def test_lab_table(small_lab):
    rows = lab_table(small_lab, 1.0, 8)
    assert [r["estimator"] for r in rows] == [LABELS[e] for e in ESTIMATORS]
    i = ESTIMATORS.index("gumbel_rao")
    assert rows[i][("target", "cosine")] == float(small_lab.cosine["target"]["gumbel_rao"][1, 1])
    assert rows[i][("linear", "bias")] == float(small_lab.bias["linear"]["gumbel_rao"][1])
    with pytest.raises(ValueError, match="tau"):
        lab_table(small_lab, 0.7, 8)
    with pytest.raises(ValueError, match="n="):
        lab_table(small_lab, 1.0, 5)
    table = lab_table_html(small_lab, rows, "caption")
    assert table.count("<tr>") == 1 + 2 * len(ESTIMATORS)  # header + one row per (problem, estimator)
    assert f"{rows[i][('target', 'cosine')]:.3f}" in table
    assert all(LABELS[e].replace("+", "+") in table for e in ESTIMATORS)


def test_run_lab_bad_arguments():
    with pytest.raises(ValueError, match="ns"):
        run_lab({"linear": PROBLEMS["linear"]}, ns=(1, 4))
    with pytest.raises(ValueError, match="tau"):
        run_lab({"linear": PROBLEMS["linear"]}, taus=(0.0,))
    with pytest.raises(ValueError, match="unknown estimator"):
        run_lab({"linear": PROBLEMS["linear"]}, estimators=("nope",))


# ------------------------------------------------------------------------------------------ tau -> 0


@pytest.mark.parametrize("problem", ["linear", "quadratic", "target", "target100"])
def test_zero_temperature_limit_is_the_mean_of_reinmax_at_tau_one(problem):
    p = PROBLEMS[problem]
    limit = zero_temperature_limit(p.logits, p.f)
    assert torch.allclose(limit, exact_mean("reinmax", p.logits, p.f, 1.0), atol=1e-12, rtol=1e-10)


def test_zero_temperature_limit_exact_for_quadratics_only():
    gen = torch.Generator().manual_seed(7)
    for _ in range(5):
        logits = torch.randn(6, generator=gen, dtype=torch.float64)
        a = torch.randn(6, 6, generator=gen, dtype=torch.float64)
        b = torch.randn(6, generator=gen, dtype=torch.float64)

        def quadratic(z, a=a, b=b):
            return ((z @ a) * z).sum(-1) + z @ b

        assert torch.allclose(zero_temperature_limit(logits, quadratic), exact_grad(logits, quadratic), atol=1e-12)
    p = PROBLEMS["target"]
    g = exact_grad(p.logits, p.f)
    assert (zero_temperature_limit(p.logits, p.f) - g).norm() > 0.5 * g.norm()


@pytest.mark.parametrize("name", ["st_gumbel_softmax", "gumbel_softmax"])
def test_small_tau_means_approach_their_limits(name):
    """At tau = 0.02 the mean ST-GS gradient is the zero-temperature limit, the relaxed GS one the exact gradient
    (per-coordinate z-test at Z = 4.5); at tau = 1 both are far from those values."""
    p = PROBLEMS["target"]
    target = zero_temperature_limit(p.logits, p.f) if name == "st_gumbel_softmax" else exact_grad(p.logits, p.f)
    grads = sample_grads(name, p.logits, p.f, 400_000, tau=0.02, generator=torch.Generator().manual_seed(11))[0]
    assert bool((mean_z(grads, target) < Z).all())
    warm = sample_grads(name, p.logits, p.f, 100_000, tau=1.0, generator=torch.Generator().manual_seed(12))[0]
    assert float(mean_z(warm, target).max()) > 10


@pytest.fixture(scope="module")
def small_sweep():
    problems = {k: PROBLEMS[k] for k in ("linear", "target")}
    return bias_against_tau(problems, taus=(0.02, 0.2, 1.0), budget=1000.0, rao_budget=200.0, min_samples=800, seed=3)


def test_sweep_shapes_counts_and_tau_free_rows(small_sweep):
    sw = small_sweep
    assert sw.taus == [0.02, 0.2, 1.0] and list(sw.bias) == ["linear", "target"]
    assert sw.n_samples["st_gumbel_softmax"] == [50_000, 5000, 1000]
    assert sw.n_samples["gumbel_rao"] == [10_000, 1000, 800]
    assert sw.n_samples["reinforce"] == [800] * 3 and sw.n_samples["reinmax"] == [800] * 3
    assert set(NOISY_AT_LOW_TAU) == {e for e in ESTIMATORS if sw.n_samples[e][0] > 800}
    assert (sw.budget, sw.rao_budget, sw.min_samples, sw.mc_samples) == (1000.0, 200.0, 800, 10)
    for p in sw.bias:
        for e in ESTIMATORS:
            for d in (sw.bias, sw.noise, sw.to_limit):
                assert d[p][e].shape == (3,) and bool((d[p][e] >= 0).all())
            assert sw.mean[p][e].shape == (3, 8)
            if e in TAU_FREE:
                assert torch.equal(sw.bias[p][e], sw.bias[p][e][:1].expand(3))
    assert sw.limit_bias["linear"] < 1e-12 and abs(sw.limit_bias["target"] - 1.0) < 0.1


def test_sweep_shows_what_happens_as_tau_falls(small_sweep):
    """The chapter's claims, on a smaller sweep: relaxed GS loses its bias, ST-GS and Gumbel-Rao keep theirs."""
    sw = small_sweep
    b, s = sw.bias["target"], sw.noise["target"]
    assert float(b["gumbel_softmax"][0]) < 3 * float(s["gumbel_softmax"][0])
    assert float(b["gumbel_softmax"][2]) > 3 * float(s["gumbel_softmax"][2])
    for e in ("st_gumbel_softmax", "gumbel_rao"):
        assert float(b[e][0]) > 3 * float(s[e][0])
        assert float(sw.to_limit["target"][e][0]) < 3 * float(s[e][0])
    for e in ("reinforce", "reinforce_baseline"):
        assert bool((b[e] < 3 * s[e]).all())


def test_sweep_means_are_the_measured_means(small_sweep):
    """``mean`` is the relative mean gradient: its distance to the exact gradient is the bias; Gumbel-Rao's and
    ST-GS's means agree within noise (Rao-Blackwellisation), ReinMax's at small tau does not (negative control)."""
    sw = small_sweep
    for p in sw.bias:
        g = exact_grad(PROBLEMS[p].logits, PROBLEMS[p].f)
        for e in ESTIMATORS:
            assert torch.allclose((sw.mean[p][e] - g / g.norm()).norm(dim=1), sw.bias[p][e], atol=1e-12)
    noise = (sw.noise["target"]["gumbel_rao"] ** 2 + sw.noise["target"]["st_gumbel_softmax"] ** 2).sqrt()
    gap = (sw.mean["target"]["gumbel_rao"] - sw.mean["target"]["st_gumbel_softmax"]).norm(dim=1)
    assert bool((gap < 4 * noise).all())
    other = (sw.mean["target"]["reinmax"] - sw.mean["target"]["st_gumbel_softmax"]).norm(dim=1)
    assert float(other[0]) > 4 * float(noise[0])


def test_sweep_bad_arguments():
    one = {"linear": PROBLEMS["linear"]}
    with pytest.raises(ValueError, match="budget"):
        bias_against_tau(one, budget=0.0)
    with pytest.raises(ValueError, match="rao_budget"):
        bias_against_tau(one, rao_budget=float("nan"))
    with pytest.raises(ValueError, match="taus"):
        bias_against_tau(one, taus=())
    with pytest.raises(ValueError, match="unknown estimator"):
        bias_against_tau(one, estimators=("nope",))
    with pytest.raises(TypeError, match="f must be a callable"):
        zero_temperature_limit(PROBLEMS["linear"].logits, None)


# ------------------------------------------------------------------------------------------ figures


def test_bias_figure_data(small_sweep):
    sw = small_sweep
    fig = bias_figure(sw, band=2.0)
    names = list(sw.bias["linear"])
    assert len(fig.data) == len(sw.bias) * (2 * len(names) + 1)  # per problem: band + line per estimator, limit
    band, line = fig.data[2 * names.index("st_gumbel_softmax")], fig.data[2 * names.index("st_gumbel_softmax") + 1]
    y, half = sw.bias["linear"]["st_gumbel_softmax"], 2.0 * sw.noise["linear"]["st_gumbel_softmax"]
    assert list(line.x) == sw.taus and list(line.y) == y.tolist()
    t = len(sw.taus)
    assert list(band.y[:t]) == (y + half).tolist() and list(band.y[t:]) == (y - half).clamp(min=0).flip(0).tolist()
    limit = fig.data[2 * len(names)]
    assert list(limit.y) == [sw.limit_bias["linear"]] * 2
    assert fig.layout.height > 0
    # the bands are polygons drawn as lines only: no marker at any vertex
    bands = [trace for trace in fig.data if trace.fill == "toself"]
    assert len(bands) == len(sw.bias) * len(names) and all(b.mode == "lines" for b in bands)
    # readable log ticks: a few decades, labelled plainly
    assert list(fig.layout.xaxis.tickvals) == [0.1, 1.0] and list(fig.layout.xaxis.ticktext) == ["0.1", "1"]


def test_bias_figure_buttons_show_one_group_at_a_time(small_sweep):
    """The first group is what the page shows before any click, through the same rule as its button."""
    fig = bias_figure(small_sweep)
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == list(BIAS_GROUPS)
    first = [bool(trace.visible) for trace in fig.data]
    assert first == list(menu.buttons[0].args[0]["visible"])
    for button, group in zip(menu.buttons, BIAS_GROUPS.values(), strict=True):
        shown = [t for t, v in zip(fig.data, button.args[0]["visible"], strict=True) if v]
        lines = {t.legendgroup for t in shown if t.fill != "toself" and t.legendgroup != "limit"}
        assert lines == set(group) and len(group) <= 3
        assert all(sum(1 for t in shown if t.legendgroup == e) == 2 * len(small_sweep.bias) for e in group)
    assert sum(len(g) for g in BIAS_GROUPS.values()) == len(ESTIMATORS)


def test_bias_and_ratio_tables(small_sweep, small_lab):
    table = bias_table_html(small_sweep, "target", "caption")
    b = small_sweep.bias["target"]["gumbel_rao"]
    assert table.count("<tr>") == 1 + len(ESTIMATORS) and f"{float(b[0]):.2f}" in table and "caption" in table
    ratios = {small_lab.titles[p]: variance_ratio(small_lab, p) for p in small_lab.bias}
    table = ratio_table_html(small_lab.taus, ratios)
    assert table.count("<tr>") == 1 + len(ratios) and f"{float(ratios['linear, K = 8'][0][0]):.2f}" in table


def test_cosine_figure_slider_data(small_lab):
    fig = cosine_figure(small_lab)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0.5", "1", "2"]
    assert fig.layout.sliders[0].active == 1
    k = len(ESTIMATORS) + ESTIMATORS.index("reinmax")  # second panel ("target")
    for i, s in enumerate(steps):
        assert s.method == "restyle"
        assert s.args[0]["y"][k] == small_lab.cosine["target"]["reinmax"][i].tolist()
    assert list(fig.data[k].y) == small_lab.cosine["target"]["reinmax"][1].tolist()


def test_edge_profile_secant_and_tangents():
    c = torch.linspace(-1, 1, 8, dtype=torch.float64)
    lin = edge_profile(linear_objective(c), 8, 0, 5)
    assert torch.allclose(lin["secant"], c[5] - c[0])
    assert torch.allclose(lin["slope_i"], lin["secant"]) and torch.allclose(lin["slope_j"], lin["secant"])
    quad = edge_profile(quadratic_objective(c), 8, 0, 5)
    # trapezoid rule: the mean of the end slopes is the secant exactly for a quadratic (why ReinMax works)
    assert torch.allclose((quad["slope_i"] + quad["slope_j"]) / 2, quad["secant"])
    assert not torch.allclose(quad["slope_i"], quad["secant"])
    tgt = edge_profile(target_objective(3, 8), 8, 0, 3, points=11)
    assert tgt["u"].shape == (11,) and float(tgt["values"][0]) == 2.0 and float(tgt["values"][-1]) == 0.0
    assert not torch.allclose((tgt["slope_i"] + tgt["slope_j"]) / 2, tgt["secant"])
    with pytest.raises(ValueError, match="differ"):
        edge_profile(linear_objective(c), 8, 2, 2)
    with pytest.raises(ValueError, match="j must"):
        edge_profile(linear_objective(c), 8, 0, 8)


def test_edge_figure_slider():
    c = torch.linspace(-1, 1, 8, dtype=torch.float64)
    profiles = {"linear": edge_profile(linear_objective(c), 8), "quadratic": edge_profile(quadratic_objective(c), 8)}
    fig = edge_figure(profiles)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["linear", "quadratic"]
    assert steps[1].args[0]["y"][0] == profiles["quadratic"]["values"].tolist()
    assert steps[1].args[0]["y"][1] == [
        float(profiles["quadratic"]["values"][0]),
        float(profiles["quadratic"]["values"][-1]),
    ]
    with pytest.raises(ValueError, match="profiles"):
        edge_figure({})


# ------------------------------------------------------------------------------------------ race


def test_optimization_race():
    p = PROBLEMS["target"]
    curves = optimization_race(p, ("reinforce_baseline", "straight_through"), steps=30, seeds=2)
    assert set(curves) == {"reinforce_baseline", "straight_through", "exact"}
    start = float(expected_value(torch.zeros(8, dtype=torch.float64), p.f))
    for runs in curves.values():
        assert runs.shape == (2, 31)
        assert bool((runs[:, 0] == start).all())
    exact = curves["exact"][0]
    assert bool((exact[1:] <= exact[:-1] + 1e-12).all()) and float(exact[-1]) < 0.5 * start
    assert float(curves["reinforce_baseline"][:, -1].mean()) < start
    fig = race_figure(curves, optimum=0.0)
    assert len(fig.data) == 3 and list(fig.data[2].y) == curves["exact"].mean(0).clamp(min=1e-12).tolist()
    summary = race_summary(curves)
    assert list(summary) == sorted(summary, key=lambda k: summary[k][0])
    m, se = summary["reinforce_baseline"]
    final = curves["reinforce_baseline"][:, -1]
    assert m == pytest.approx(float(final.mean())) and se == pytest.approx(float(final.std()) / 2**0.5)
    assert summary["exact"][1] == 0.0  # the exact gradient has no randomness: every seed runs the same
    table = race_table_html(summary, "caption")
    assert table.count("<tr>") == 4 and "exact gradient" in table and f"{m:.4f}" in table
    with pytest.raises(ValueError, match="steps"):
        optimization_race(p, steps=0)
    with pytest.raises(ValueError, match="lr"):
        optimization_race(p, lr=-1.0)


# ------------------------------------------------------------------------------------------ exercises


def _own_st(lg, gen, tau=None):
    """Plain straight-through written from scratch (or ST-Gumbel-Softmax with ``tau``), as a student would."""
    g = -torch.log(torch.empty_like(lg).exponential_(generator=gen).clamp(min=1e-300))
    y_hard = torch.nn.functional.one_hot((lg.detach() + g).argmax(-1), lg.shape[-1]).to(lg.dtype)
    y_soft = torch.softmax(lg, -1) if tau is None else torch.softmax((lg + g) / tau, -1)
    return y_hard + (y_soft - y_soft.detach())


def test_check_straight_through_layer(capsys):
    assert check_straight_through_layer(_own_st) is None
    assert "correct" in capsys.readouterr().out

    def soft(lg, gen):
        return torch.softmax(lg, -1)

    with pytest.raises(AssertionError, match="one-hot"):
        check_straight_through_layer(soft)
    with pytest.raises(AssertionError, match="backward"):
        check_straight_through_layer(lambda lg, gen: _own_st(lg, gen, tau=1.0))  # ST-Gumbel-Softmax
    with pytest.raises(AssertionError, match="no gradient"):
        check_straight_through_layer(lambda lg, gen: _own_st(lg, gen).detach())
    with pytest.raises(AssertionError, match="not allowed in this exercise"):
        check_straight_through_layer(lambda lg, gen: straight_through_softmax(lg, generator=gen))


def test_exact_mean_bad_name():
    p = PROBLEMS["linear"]
    with pytest.raises(ValueError, match="name"):
        exact_mean("gumbel_rao", p.logits, p.f)
