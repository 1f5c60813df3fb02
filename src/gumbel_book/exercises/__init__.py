"""Check functions for the chapters' exercises, one module per chapter, all re-exported here.

Each check prints "correct" or raises ``AssertionError`` with a message that explains the mistake,
so the same call works in a notebook and in an autograder.
"""

from .categorical_vae import check_iw_bound, check_kl_uniform
from .gumbel_max import check_categorical_sampler, check_expected_max, check_gumbel_sampler, check_top2_probability
from .gumbel_softmax import check_annealing_answers, check_binary_concrete_log_density, check_relaxed_sampler
from .reparameterization import check_baseline_estimator, check_exponential_rsample, check_score_variance
from .straight_through import check_straight_through_layer

__all__ = [
    "check_annealing_answers",
    "check_baseline_estimator",
    "check_binary_concrete_log_density",
    "check_categorical_sampler",
    "check_expected_max",
    "check_exponential_rsample",
    "check_gumbel_sampler",
    "check_iw_bound",
    "check_kl_uniform",
    "check_relaxed_sampler",
    "check_score_variance",
    "check_straight_through_layer",
    "check_top2_probability",
]
