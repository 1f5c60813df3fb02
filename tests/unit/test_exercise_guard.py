"""The exercise checks test the student's own work: the gamed answers of issue 9 fail, the guard that switches
off the package's answers always restores them, and every check follows one convention (None, AssertionError with
a hint that does not give the expected values away, TypeError only for a non-callable)."""

from __future__ import annotations

import math

import pytest
import torch

import gumbel_book as gb
from gumbel_book import exercises as X
from gumbel_book.exercises.guard import own_work
from gumbel_book.sampling import gumbel_softmax as gumbel_softmax_imported_early

# --- the gamed answers listed in issue 9 ---------------------------------------------------------------------


def test_relaxed_sampler_check_rejects_the_package_gumbel_softmax():
    with pytest.raises(AssertionError, match="gumbel_softmax is not allowed in this exercise: use only torch.rand"):
        X.check_relaxed_sampler(lambda lg, tau, gen: gb.gumbel_softmax(lg, tau, generator=gen))
    with pytest.raises(AssertionError, match="not allowed"):  # a name imported before the check ran is caught too
        X.check_relaxed_sampler(lambda lg, tau, gen: gumbel_softmax_imported_early(lg, tau, generator=gen))
    with pytest.raises(AssertionError, match="torch.nn.functional.gumbel_softmax is not allowed"):
        X.check_relaxed_sampler(lambda lg, tau, gen: torch.nn.functional.gumbel_softmax(lg, tau))


def test_binary_concrete_check_rejects_the_package_density():
    def via_package(y1, diff, tau):
        y = torch.stack([y1, 1 - y1], -1)
        return gb.concrete_log_prob(y, torch.tensor([diff, 0.0], dtype=y1.dtype).expand_as(y), tau)

    with pytest.raises(AssertionError, match="concrete_log_prob is not allowed"):
        X.check_binary_concrete_log_density(via_package)

    def via_distributions(y1, diff, tau):
        d = torch.distributions.RelaxedBernoulli(torch.tensor(float(tau)), logits=torch.tensor(diff))
        return d.log_prob(y1.float()).double()

    with pytest.raises(AssertionError, match="torch.distributions.* is not allowed"):
        X.check_binary_concrete_log_density(via_distributions)


def test_categorical_check_rejects_multinomial_and_distributions():
    def multinomial(lg, n, generator=None):
        return torch.multinomial(torch.softmax(lg, -1), n, replacement=True, generator=generator)

    def tensor_multinomial(lg, n, generator=None):
        return torch.softmax(lg, -1).multinomial(n, replacement=True, generator=generator)

    def categorical(lg, n, generator=None):
        return torch.distributions.Categorical(logits=lg).sample((n,))

    def package(lg, n, generator=None):
        return gb.gumbel_max(lg.expand(n, -1), generator=generator)

    for answer, match in (
        (multinomial, "torch.multinomial is not allowed"),
        (tensor_multinomial, "multinomial is not allowed"),
        (categorical, "Categorical.sample is not allowed"),
        (package, "gumbel_max is not allowed"),
    ):
        with pytest.raises(AssertionError, match=match):
            X.check_categorical_sampler(answer)


def test_baseline_check_rejects_a_constant_and_the_reparameterized_gradient():
    with pytest.raises(AssertionError, match="one constant b"):
        X.check_baseline_estimator(lambda mu, sigma, eps: torch.full_like(eps, 2 * mu))  # the exact gradient
    with pytest.raises(AssertionError, match="one constant b"):
        X.check_baseline_estimator(lambda mu, sigma, eps: 2 * (mu + sigma * eps))  # reparameterized, no score


# --- the guard ------------------------------------------------------------------------------------------------


def test_guard_restores_everything_even_when_the_answer_raises():
    before = (gb.gumbel_softmax.__code__, torch.multinomial, torch.distributions.Normal.rsample)
    with pytest.raises(ZeroDivisionError), own_work("use only x"):
        with pytest.raises(AssertionError, match="use only x"):
            torch.distributions.Normal(0.0, 1.0).rsample()
        raise ZeroDivisionError
    assert (gb.gumbel_softmax.__code__, torch.multinomial, torch.distributions.Normal.rsample) == before
    assert "multinomial" not in vars(torch.Tensor) or torch.Tensor.multinomial is before[1]
    assert gb.gumbel_softmax(torch.zeros(3), 1.0).shape == (3,)
    assert int(torch.multinomial(torch.ones(2), 1)) in (0, 1)
    assert torch.distributions.Normal(0.0, 1.0).sample().shape == ()


# --- one convention for every check ---------------------------------------------------------------------------

FUNCTION_CHECKS = [
    X.check_exponential_rsample,
    X.check_baseline_estimator,
    X.check_gumbel_sampler,
    X.check_categorical_sampler,
    X.check_gumbel_topk_sampler,
    X.check_relaxed_sampler,
    X.check_binary_concrete_log_density,
    X.check_straight_through_layer,
    X.check_st_gs_linear_grad,
    X.check_conditional_gumbels,
    X.check_kl_uniform,
    X.check_iw_bound,
]
NUMBER_CHECKS = [X.check_score_variance, X.check_top2_probability, X.check_expected_max]


def _numeric_answers() -> dict[str, tuple]:
    """Each numeric question's answer computed here, from the package (never from the check modules, which hold
    only digests): {question: (check, the answer, a slip its hint names)}."""
    from gumbel_book.exercises.gumbel_softmax import ANNEAL_STEP, GLOBAL_SCHEDULE, RESTARTED_SCHEDULE
    from gumbel_book.labs.gumbel_max import EULER_GAMMA, ordered_tuple_probabilities
    from gumbel_book.labs.gumbel_softmax import vae_epoch

    epoch = vae_epoch()["steps"]
    tau_global = gb.anneal_tau(ANNEAL_STEP, **GLOBAL_SCHEDULE)
    tau_restarted = gb.anneal_tau(ANNEAL_STEP % epoch, **RESTARTED_SCHEDULE)
    top2 = ordered_tuple_probabilities((0.5, 0.3, 0.2), 2)[(1, 0)]
    return {
        "reparam-score-variance": (X.check_score_variance, 105 - 2 * 15 + 3 - (3 - 1) ** 2, 105 - 2 * 15 + 3),
        "gm-top2": (X.check_top2_probability, top2, 0.5 * 0.3),
        "gm-expected-max": (X.check_expected_max, math.log(6) + EULER_GAMMA, math.log(6)),
        "gs-anneal-global": (lambda v: X.check_annealing_answers(v, tau_restarted), tau_global, 0.5422761),
        "gs-anneal-restarted": (lambda v: X.check_annealing_answers(tau_global, v), tau_restarted, 0.5),
    }


@pytest.mark.parametrize("question", list(_numeric_answers()))
def test_digests_accept_the_answer_the_package_computes_and_name_the_slip(question, capsys):
    """The digests in the check modules are of today's answers (a change of the VAE's split, say, would change
    the restarted temperature): the answer passes, a slip gets its hint, a value 1% off gets neither."""
    check, answer, slip = _numeric_answers()[question]
    assert check(answer) is None and "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError) as hint:
        check(slip)
    with pytest.raises(AssertionError) as plain:
        check(answer * 1.01)
    assert str(hint.value) != str(plain.value)
    assert f"{answer:.4g}" not in str(hint.value) + str(plain.value)


@pytest.mark.parametrize("check", FUNCTION_CHECKS, ids=lambda c: c.__name__)
def test_function_checks_raise_type_error_only_for_a_non_callable(check):
    with pytest.raises(TypeError, match="must be a function"):
        check(3.0)
    with pytest.raises(AssertionError):  # a function that returns nothing is a wrong answer, not a type error
        check(lambda *args, **kwargs: None)


@pytest.mark.parametrize("check", NUMBER_CHECKS, ids=lambda c: c.__name__)
def test_number_checks_treat_a_non_number_as_a_wrong_answer(check):
    for value in ("1", None, ..., math.nan):
        with pytest.raises(AssertionError, match="number"):
            check(value)


def test_messages_do_not_give_the_expected_values_away():
    exact_top2 = 0.3 * 0.5 / 0.7
    exact_max = math.log(6) + 0.5772156649015329
    for check, wrong, exact in (
        (X.check_top2_probability, 0.2, exact_top2),
        (X.check_expected_max, 1.0, exact_max),
        (X.check_score_variance, 73.0, 74.0),
    ):
        with pytest.raises(AssertionError) as info:
            check(wrong)
        text = str(info.value)
        assert f"{exact:.3g}" not in text and f"{exact:.4f}" not in text and f"{exact:g}" not in text, text
    with pytest.raises(AssertionError) as info:
        X.check_annealing_answers(6000, 0.5)
    assert "7000" not in str(info.value) and "1.0" not in str(info.value)


# --- the new checks of st-ex-linear and st-ex-rao -------------------------------------------------------------


def st_gs_grad(logits, c, tau, g):
    theta = logits.expand_as(g).clone().requires_grad_(True)
    y_soft = torch.softmax((theta + g) / tau, -1)
    y_hard = torch.nn.functional.one_hot(y_soft.argmax(-1), g.shape[-1]).to(y_soft.dtype)
    (grad,) = torch.autograd.grad(((y_hard - y_soft.detach() + y_soft) * c).sum(), theta)
    return grad


def conditional_gumbels(logits, index, generator):
    e = torch.empty(index.shape[0], logits.shape[-1], dtype=logits.dtype).exponential_(generator=generator)
    top = torch.logsumexp(logits, -1) - torch.log(e.gather(1, index[:, None]))
    others = -torch.logaddexp(torch.log(e) - logits, -top)
    return others.scatter(1, index[:, None], top) - logits


def test_st_gs_linear_grad_check():
    assert X.check_st_gs_linear_grad(st_gs_grad) is None
    assert X.check_st_gs_linear_grad(st_gs_grad, tau=0.3, seed=2, logits=(0.0, 1.0, -1.0), c=(1.0, 2.0, 0.0)) is None
    with pytest.raises(AssertionError, match="factor 1/tau"):
        X.check_st_gs_linear_grad(lambda lg, c, tau, g: st_gs_grad(lg, c, tau, g) * tau, tau=0.5)

    def plain_st(lg, c, tau, g):
        p = torch.softmax(lg, -1)
        return (p * (c - (p * c).sum())).expand_as(g).clone()

    with pytest.raises(AssertionError, match="plain ST"):
        X.check_st_gs_linear_grad(plain_st)


def test_conditional_gumbels_check():
    assert X.check_conditional_gumbels(conditional_gumbels) is None

    def forced(logits, index, generator):  # unconditional noise, then the argmax forced by a swap: wrong law
        g = -torch.log(
            torch.empty(index.shape[0], logits.shape[-1], dtype=logits.dtype).exponential_(generator=generator)
        )
        x = logits + g
        top = x.max(-1, keepdim=True).values
        x = x.scatter(1, index[:, None], top + 1e-9)
        return x - logits

    with pytest.raises(AssertionError):
        X.check_conditional_gumbels(forced)

    def package(logits, index, generator):
        from gumbel_book.straight_through import conditional_gumbel

        return conditional_gumbel(logits.expand(index.shape[0], -1), index, 1, generator=generator)[0] - logits

    with pytest.raises(AssertionError, match="conditional_gumbel is not allowed"):
        X.check_conditional_gumbels(package)


def test_every_chapter_check_is_exported():
    """Each chapter module's ``check_*`` functions are re-exported by ``gumbel_book.exercises``."""
    import importlib
    import inspect

    from gumbel_book.notebook import CHAPTERS

    for name in CHAPTERS[1:]:  # every chapter after the introduction has exercises
        module = importlib.import_module(f"gumbel_book.exercises.{name}")
        checks = {
            n
            for n, f in inspect.getmembers(module, inspect.isfunction)
            if n.startswith("check_") and f.__module__ == module.__name__
        }
        assert checks <= set(X.__all__), f"{name}: not re-exported: {sorted(checks - set(X.__all__))}"
