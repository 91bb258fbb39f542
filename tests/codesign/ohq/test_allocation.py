import itertools

import numpy as np
import pytest

from codesign.errors import InputError
from codesign.ohq.allocation import allocate_bits


def _brute_force(sens, cycles, size, cycle_budget, size_budget):
    best = None
    for choice in itertools.product(range(sens.shape[1]), repeat=sens.shape[0]):
        rows = np.arange(sens.shape[0])
        c, s, q = cycles[rows, choice].sum(), size[rows, choice].sum(), sens[rows, choice].sum()
        if c <= cycle_budget and s <= size_budget and (best is None or q < best[0] - 1e-12):
            best = (q, choice)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_the_ilp_finds_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    items, choices = 5, 4
    bits = np.array([2, 4, 6, 8])
    work = rng.integers(100, 1000, items)[:, None]
    cycles = work * bits[None] / 8 * rng.uniform(0.9, 1.1, (items, choices))
    size = rng.integers(10, 100, items)[:, None] * bits[None]
    sens = rng.uniform(0.5, 2, items)[:, None] * (2.0 ** -bits[None]) * 100    # fewer bits, more sensitive
    budget, size_budget = 0.6 * cycles[:, -1].sum(), 0.7 * size[:, -1].sum()
    want = _brute_force(sens, cycles, size, budget, size_budget)
    got = allocate_bits(sens, cycles, size, cycle_budget=budget, size_budget=size_budget)
    assert got.sensitivity == pytest.approx(want[0])
    assert got.cycles <= budget + 1e-9 and got.size <= size_budget + 1e-9


def test_forbidden_choices_are_never_taken():
    sens = np.array([[1.0, 0.0], [1.0, 0.0]])
    cycles = np.array([[1.0, np.inf], [1.0, 2.0]])
    got = allocate_bits(sens, cycles, None, cycle_budget=10)
    assert list(got.choice) == [0, 1]


def test_an_impossible_budget_names_the_least_reachable():
    cycles = np.array([[4.0, 8.0], [4.0, 8.0]])
    with pytest.raises(InputError, match=r"cycle budget: '7' is not allowed; expected >= 8"):
        allocate_bits(np.zeros((2, 2)), cycles, None, cycle_budget=7)


def test_a_hundred_layers_meet_the_budget():
    """The size of the benchmark's problem (its solve time is make bench-ohq's figure, not a test's)."""
    rng = np.random.default_rng(0)
    bits = np.array([2, 3, 4, 5, 6, 8])
    cycles = rng.integers(1000, 100000, 100)[:, None] * bits[None] / 8
    sens = rng.uniform(0, 1, 100)[:, None] * (2.0 ** -bits[None])
    got = allocate_bits(sens, cycles, cycles, cycle_budget=0.7 * cycles[:, -1].sum())
    assert got.cycles <= 0.7 * cycles[:, -1].sum() + 1e-6
