#!/usr/bin/env python3
"""Reference Poisson fit for medfed's model tests.

Fits statsmodels' GLM with a Poisson family (log link, no penalty) on the
bundled UCI heart data: all four site files of data/heart/ stacked, the
count target `ca` (number of major vessels coloured by fluoroscopy, 0-3),
and five numeric features, keeping only rows where the target and every
feature are present. Each feature is standardised over the kept rows as
(value - mean) / sd with the population standard deviation (ddof = 0), which
crates/model/tests/poisson_reference.rs reproduces before fitting the same
model with medfed's Newton solver.

Run from the repository root (needs pandas and statsmodels):

    pip install pandas statsmodels
    python3 scripts/reference/poisson_heart.py

and copy the printed constants into crates/model/tests/poisson_reference.rs.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

ROOT = Path(__file__).resolve().parents[2]
SITES = ["cleveland", "hungarian", "switzerland", "va"]
FEATURES = ["age", "trestbps", "chol", "thalach", "oldpeak"]
TARGET = "ca"


def main() -> None:
    frames = [pd.read_csv(ROOT / "data" / "heart" / f"{site}.csv") for site in SITES]
    data = pd.concat(frames, ignore_index=True)[FEATURES + [TARGET]]
    data = data.apply(pd.to_numeric, errors="coerce").dropna()
    x = data[FEATURES].to_numpy(dtype=float)
    y = data[TARGET].to_numpy(dtype=float)
    z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=0)
    model = sm.GLM(y, sm.add_constant(z), family=sm.families.Poisson())
    fit = model.fit(method="IRLS", tol=1e-14, maxiter=200)
    print(f"// rows kept: {len(y)}, sum of {TARGET}: {y.sum():.0f}")
    print(f"// statsmodels {sm.__version__}, converged: {fit.converged}")
    print(f"const DEVIANCE: f64 = {float(fit.deviance)!r};")
    print("const COEFFICIENTS: [f64; %d] = [" % len(fit.params))
    for name, value in zip(["intercept"] + FEATURES, fit.params):
        print(f"    {float(value)!r}, // {name}")
    print("];")


if __name__ == "__main__":
    main()
