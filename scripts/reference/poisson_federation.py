#!/usr/bin/env python3
"""Reference for tests/poisson.rs: the pooled Poisson fit a federation of
the four bundled heart sites must reach.

statsmodels' GLM with a Poisson family (log link, no penalty) on every row
of data/heart/*.csv whose count target `ca` (number of major vessels
coloured by fluoroscopy, 0-3) is present, on six features that are present
on all of those rows, in their original units. The federation standardises
its features first; an unpenalised maximum-likelihood fit does not depend on
that, so the test converts the federated model back to original units with
the published preprocessing and compares.

Run from the repository root (needs pandas and statsmodels):

    pip install pandas statsmodels
    python3 scripts/reference/poisson_federation.py

and copy the printed constants into tests/poisson.rs.
"""

from pathlib import Path

import pandas as pd
import statsmodels.api as sm

ROOT = Path(__file__).resolve().parents[2]
SITES = ["cleveland", "hungarian", "switzerland", "va"]
FEATURES = ["age", "sex", "trestbps", "thalach", "exang", "oldpeak"]
TARGET = "ca"


def main() -> None:
    frames = [pd.read_csv(ROOT / "data" / "heart" / f"{site}.csv") for site in SITES]
    data = pd.concat(frames, ignore_index=True)[FEATURES + [TARGET]]
    data = data.apply(pd.to_numeric, errors="coerce")
    data = data[data[TARGET].notna()]
    assert not data[FEATURES].isna().any().any(), "a feature is missing on a row with a target"
    x = sm.add_constant(data[FEATURES].to_numpy(dtype=float))
    y = data[TARGET].to_numpy(dtype=float)
    fit = sm.GLM(y, x, family=sm.families.Poisson()).fit(method="IRLS", tol=1e-14, maxiter=200)
    print(f"// rows: {len(y)}, sum of {TARGET}: {y.sum():.0f}")
    print(f"// statsmodels {sm.__version__}, converged: {fit.converged}")
    print(f"const DEVIANCE: f64 = {float(fit.deviance)!r};")
    print(f"const COEFFICIENTS: [f64; {len(fit.params)}] = [")
    for name, value in zip(["intercept"] + FEATURES, fit.params):
        print(f"    {float(value)!r}, // {name}")
    print("];")


if __name__ == "__main__":
    main()
