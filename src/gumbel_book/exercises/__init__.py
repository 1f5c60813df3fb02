"""Check functions for the chapters' exercises, one module per chapter, all re-exported here.

One convention for every check: it returns None (and prints "correct") when the answer is right, raises
``AssertionError`` with a hint, never the expected values, when it is wrong, and raises ``TypeError`` only
when a function was expected and something else came. While the student's function runs, the package's own
samplers, densities and estimators and ``torch.multinomial`` / ``torch.distributions`` sampling raise
"... is not allowed in this exercise: use only ..." (see :mod:`gumbel_book.exercises.guard`), so the same
call works in a notebook and in the autograder and tests the student's own work.
"""

from .categorical_vae import check_iw_bound, check_kl_uniform, check_vae_loss
from .gumbel_max import (
    check_categorical_sampler,
    check_expected_max,
    check_gumbel_sampler,
    check_gumbel_topk_sampler,
    check_top2_probability,
)
from .gumbel_softmax import check_annealing_answers, check_binary_concrete_log_density, check_relaxed_sampler
from .language_models import check_exponential_race, check_top_k_sampler, check_watermark_detector
from .reparameterization import check_baseline_estimator, check_exponential_rsample, check_score_variance
from .straight_through import check_conditional_gumbels, check_st_gs_linear_grad, check_straight_through_layer

__all__ = [
    "check_annealing_answers",
    "check_baseline_estimator",
    "check_binary_concrete_log_density",
    "check_categorical_sampler",
    "check_conditional_gumbels",
    "check_expected_max",
    "check_exponential_race",
    "check_exponential_rsample",
    "check_gumbel_sampler",
    "check_gumbel_topk_sampler",
    "check_iw_bound",
    "check_kl_uniform",
    "check_relaxed_sampler",
    "check_score_variance",
    "check_st_gs_linear_grad",
    "check_straight_through_layer",
    "check_top_k_sampler",
    "check_top2_probability",
    "check_vae_loss",
    "check_watermark_detector",
]
