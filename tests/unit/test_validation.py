"""Bad input gets a clear error that names the argument and the value, never NaN."""

from __future__ import annotations

import pytest
import torch

import gumbel_book as gb

NAN, INF = float("nan"), float("inf")


def _call_all(logits, **kw):
    """Every public function that takes logits, called with ``logits``."""
    return [
        lambda: gb.gumbel_softmax(logits, **kw),
        lambda: gb.gumbel_softmax(logits, hard=True, **kw),
        lambda: gb.gumbel_max(logits, **{k: v for k, v in kw.items() if k != "tau"}),
        lambda: gb.gumbel_topk(logits, 1, **{k: v for k, v in kw.items() if k != "tau"}),
        lambda: gb.concrete_log_prob(
            torch.full(tuple(logits.shape), 1 / logits.shape[-1]), logits, kw.get("tau", 1.0), dim=kw.get("dim", -1)
        ),
    ]


@pytest.mark.parametrize("tau", [0.0, -1.0, NAN, INF, -INF])
def test_bad_tau_is_a_value_error_naming_it(tau):
    for fn in (
        lambda: gb.gumbel_softmax(torch.zeros(3), tau=tau),
        lambda: gb.concrete_log_prob(torch.full((3,), 1 / 3), torch.zeros(3), tau),
    ):
        with pytest.raises(ValueError, match=r"tau must be finite and > 0, got") as info:
            fn()
        assert str(tau) in str(info.value)


def test_bad_tau_tensor_and_type():
    with pytest.raises(ValueError, match="tau"):
        gb.gumbel_softmax(torch.zeros(2, 3), tau=torch.tensor([[1.0], [0.0]]))
    with pytest.raises(TypeError, match="tau"):
        gb.gumbel_softmax(torch.zeros(3), tau="1")
    with pytest.raises(TypeError, match="tau"):
        gb.gumbel_softmax(torch.zeros(3), tau=True)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.uint8])
def test_integer_or_bool_logits_are_a_type_error(dtype):
    for fn in _call_all(torch.zeros(4, dtype=dtype)):
        with pytest.raises(TypeError, match=rf"logits must be a floating-point tensor, got dtype {dtype}"):
            fn()


def test_non_tensor_logits_are_a_type_error():
    with pytest.raises(TypeError, match="logits must be a torch.Tensor, got list"):
        gb.gumbel_softmax([0.0, 1.0])


@pytest.mark.parametrize("dim", [2, -3, 5])
def test_dim_out_of_range_is_an_index_error(dim):
    for fn in _call_all(torch.zeros(3, 4), dim=dim):
        with pytest.raises(IndexError, match=rf"dim={dim} is out of range"):
            fn()


def test_scalar_logits_have_no_category_dim():
    with pytest.raises(IndexError, match="dim=-1"):
        gb.gumbel_softmax(torch.tensor(1.0))


@pytest.mark.parametrize("bad,msg", [(NAN, "NaN"), (INF, r"\+inf")])
def test_nan_or_plus_inf_logits_are_a_value_error(bad, msg):
    for fn in _call_all(torch.tensor([[0.0, bad, 1.0], [0.0, 0.0, 0.0]])):
        with pytest.raises(ValueError, match=msg):
            fn()


def test_all_masked_row_is_a_value_error_naming_the_row():
    lg = torch.tensor([[0.0, 1.0, 2.0], [-INF, -INF, -INF]])
    for fn in _call_all(lg)[:4]:
        with pytest.raises(ValueError, match=r"-inf for every category along dim=1 \(first such row at index \(1,\)\)"):
            fn()


def test_some_masked_categories_are_legal():
    lg = torch.tensor([0.0, -INF, 1.0])
    assert gb.gumbel_softmax(lg)[1] == 0
    assert gb.gumbel_max(lg) != 1


def test_validation_switch_skips_data_checks_and_restores():
    lg = torch.tensor([0.0, NAN, 1.0])
    assert gb.validation_enabled()
    with gb.validate_args(False):
        assert not gb.validation_enabled()
        gb.gumbel_softmax(lg)  # no error: the caller asked for no data checks
        with pytest.raises(ValueError, match="tau"):  # argument checks stay on
            gb.gumbel_softmax(lg, tau=0.0)
    assert gb.validation_enabled()
    with pytest.raises(ValueError, match="NaN"):
        gb.gumbel_softmax(lg)
    gb.set_validate_args(False)
    try:
        gb.gumbel_max(lg)
    finally:
        gb.set_validate_args(True)
    with pytest.raises(TypeError, match="bool"):
        gb.set_validate_args("no")


def test_hard_must_be_bool():
    with pytest.raises(TypeError, match="hard must be a bool, got 'yes'"):
        gb.gumbel_softmax(torch.zeros(3), hard="yes")


def test_empty_category_dim_is_a_value_error():
    with pytest.raises(ValueError, match="no categories"):
        gb.gumbel_softmax(torch.zeros(2, 0))
