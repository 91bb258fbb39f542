"""OHQ's bit allocation: one bit width per layer (or channel group) by an integer linear program.

Variables ``x[i, b]`` in {0, 1}: item i (a layer or a channel group) takes bit choice b. Minimize the total
sensitivity ``sum x[i, b] * sensitivity[i, b]`` subject to exactly one choice per item, total cycles within the
cycle budget and total size within the size budget. `scipy.optimize.milp` (HiGHS) solves it to its default
optimality gap; a 100-layer problem with six choices takes about 0.1 s (`make bench-ohq`, ``ilp_seconds``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from codesign.errors import InputError


@dataclass(frozen=True)
class Allocation:
    choice: np.ndarray          # [items] index of the chosen bit width
    sensitivity: float
    cycles: float
    size: float


def allocate_bits(sensitivity, cycles, size, *, cycle_budget: float, size_budget: float | None = None,
                  time_limit: float = 60.0) -> Allocation:
    """The least-sensitive choice per item whose total cycles and size fit the budgets. All tables are
    [items, choices]; an item that cannot take a choice has ``inf`` there."""
    sensitivity, cycles = np.asarray(sensitivity, dtype=float), np.asarray(cycles, dtype=float)
    size = np.zeros_like(cycles) if size is None else np.asarray(size, dtype=float)
    if not sensitivity.shape == cycles.shape == size.shape or sensitivity.ndim != 2:
        raise InputError("bit allocation tables", f"{sensitivity.shape}, {cycles.shape}, {size.shape}",
                         "three [items, choices] tables of one shape")
    items, choices = sensitivity.shape
    allowed = np.isfinite(sensitivity) & np.isfinite(cycles) & np.isfinite(size)
    least_cycles = np.where(allowed, cycles, np.inf).min(axis=1).sum()
    if least_cycles > cycle_budget:
        raise InputError("cycle budget", f"{cycle_budget:.0f}", f">= {least_cycles:.0f}, the fewest cycles any choice "
                                                                "reaches")
    least_size = np.where(allowed, size, np.inf).min(axis=1).sum()
    if size_budget is not None and least_size > size_budget:
        raise InputError("size budget", f"{size_budget:.0f}", f">= {least_size:.0f}, the smallest model any choice "
                                                              "reaches")

    def finite(table):
        return np.where(allowed, table, 0.0).ravel()

    one_each = np.kron(np.eye(items), np.ones(choices))           # sum over b of x[i, b] == 1
    constraints = [LinearConstraint(one_each, 1, 1), LinearConstraint(finite(cycles)[None], -np.inf, cycle_budget)]
    if size_budget is not None:
        constraints.append(LinearConstraint(finite(size)[None], -np.inf, size_budget))
    result = milp(c=finite(sensitivity), constraints=constraints, integrality=np.ones(items * choices),
                  bounds=Bounds(0, allowed.ravel().astype(float)), options={"time_limit": time_limit})
    if result.x is None:
        raise InputError("budgets", f"cycles {cycle_budget:.0f}, size {size_budget}", f"a feasible allocation "
                         f"(solver: {result.message})")
    choice = result.x.reshape(items, choices).argmax(axis=1)
    rows = np.arange(items)
    return Allocation(choice=choice, sensitivity=float(sensitivity[rows, choice].sum()),
                      cycles=float(cycles[rows, choice].sum()), size=float(size[rows, choice].sum()))
