"""gumbel_book: the tested code behind The Gumbel-Softmax Book.

The notebooks, the tests and CI all import this one package.
"""

from .device import default_device
from .sampling import concrete_log_prob, gumbel_max, gumbel_softmax, gumbel_topk, sample_gumbel
from .schedule import anneal_tau
from .validation import set_validate_args, validate_args, validation_enabled

__version__ = "0.1.0"

__all__ = [
    "anneal_tau",
    "concrete_log_prob",
    "default_device",
    "gumbel_max",
    "gumbel_softmax",
    "gumbel_topk",
    "sample_gumbel",
    "set_validate_args",
    "validate_args",
    "validation_enabled",
]
