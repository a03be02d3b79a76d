"""Error measures and the table of largest errors that compare.py and selftest.py print and judge."""

import math

import numpy as np


def normwise(actual, expected) -> float:
    """||actual - expected|| / ||expected|| (absolute when expected is zero), in double."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return math.inf
    diff = float(np.linalg.norm((a - e).ravel()))
    scale = float(np.linalg.norm(e.ravel()))
    return diff / scale if scale > 0 else diff


def relative(actual: float, expected: float) -> float:
    if not math.isfinite(actual):
        return math.inf
    return abs(actual - expected) / abs(expected) if expected != 0 else abs(actual)


class Report:
    """Rows of (quantity, against, largest error, tolerance, detail); failed when any error is above tolerance."""

    def __init__(self):
        self.rows = []

    def add(self, quantity: str, against: str, err: float, tol: float, detail: str = ""):
        self.rows.append((quantity, against, err, tol, detail))

    def add_gradients(self, against: str, actual: dict, expected: dict, tol: float, worst: int = 3):
        """One row for all gradient tensors (the largest normwise error), naming the worst few."""
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        if missing or extra:
            self.add(f"gradients ({len(expected)} tensors)", against, math.inf, tol,
                     f"names differ: missing {missing[:3]}, unexpected {extra[:3]}")
            return
        errs = sorted(((normwise(actual[k], expected[k]), k) for k in expected), reverse=True)
        detail = ", ".join(f"{k} {e:.2e}" for e, k in errs[:worst])
        self.add(f"gradients ({len(expected)} tensors)", against, errs[0][0], tol, "worst: " + detail)

    def add_series(self, quantity: str, against: str, actual, expected, tol: float):
        """One row for a per-step series: the largest relative error and the step where it is."""
        if len(actual) < len(expected):
            self.add(quantity, against, math.inf, tol, f"{len(actual)} steps, expected {len(expected)}")
            return
        errs = [relative(a, e) for a, e in zip(actual, expected)]
        s = int(np.argmax(errs))
        self.add(quantity, against, errs[s], tol, f"at step {s}: {actual[s]:.10g} vs {expected[s]:.10g}")

    @property
    def ok(self) -> bool:
        return all(err <= tol for _, _, err, tol, _ in self.rows)

    def print(self, file=None):
        width = max([len(q) for q, *_ in self.rows] + [8])
        awidth = max([len(a) for _, a, *_ in self.rows] + [7])
        print(f"{'quantity':<{width}}  {'against':<{awidth}}  {'largest err':>11}  {'tolerance':>9}", file=file)
        for q, a, err, tol, detail in self.rows:
            verdict = "ok" if err <= tol else "FAIL"
            print(f"{q:<{width}}  {a:<{awidth}}  {err:11.3e}  {tol:9.0e}  {verdict:<4}  {detail}", file=file)
