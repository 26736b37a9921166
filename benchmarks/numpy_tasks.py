"""Numeric tasks for case 8's sweep: small logistic-regression fits with numpy, then a
summary, as a user's parameter sweep would be. A fit takes 15-85 ms of CPU (its size
grows with ``seed % 10``; 50 ms on average on the 2-CPU development VM); numpy is
imported where a user would import it."""

from __future__ import annotations

import numpy as np

import toolkit


def fit(seed: int, reg: float = 0.01, iters: int = 400, features: int = 20) -> dict:
    """Fit a logistic regression by gradient descent on a synthetic problem."""
    rows = 2000 + 1200 * (seed % 10)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    y = (x @ rng.normal(size=features) + rng.normal(size=rows) > 0).astype(float)
    w = np.zeros(features)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        w -= 0.5 * (x.T @ (p - y) / rows + reg * w)
    return {"accuracy": float(((x @ w > 0) == (y > 0.5)).mean()), "rows": rows}


def summary(inputs: list) -> dict:
    """The mean accuracy of the fits."""
    values = [i["value"]["accuracy"] for i in inputs]
    return {"n": len(values), "mean_accuracy": sum(values) / len(values)}


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(fit, name="sweep.fit")
    registry.add(summary, name="sweep.summary")
