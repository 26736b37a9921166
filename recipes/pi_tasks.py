"""Tasks for recipes/pi.toml: Monte Carlo estimates of pi and their summary."""

import math
import random

import toolkit


def estimate(samples: int, seed: int, method: str = "plain") -> dict:
    """Estimate pi from `samples` random points in the unit square."""
    rng = random.Random(seed)
    inside = 0
    if method == "plain":
        for _ in range(samples):
            x, y = rng.random(), rng.random()
            inside += x * x + y * y <= 1.0
    elif method == "antithetic":
        for _ in range(samples // 2):
            x, y = rng.random(), rng.random()
            inside += x * x + y * y <= 1.0
            inside += (1 - x) ** 2 + (1 - y) ** 2 <= 1.0
        samples = 2 * (samples // 2)
    else:
        raise ValueError(f"unknown method {method!r}")
    return {"pi": 4.0 * inside / samples, "samples": samples}


def summarize(inputs: list) -> dict:
    """Average the estimates per method and overall."""
    by_method: dict = {}
    for item in inputs:
        by_method.setdefault(item["params"]["method"], []).append(item["value"]["pi"])
    means = {m: sum(v) / len(v) for m, v in sorted(by_method.items())}
    everything = [p for values in by_method.values() for p in values]
    overall = sum(everything) / len(everything)
    return {"pi": overall, "error": abs(overall - math.pi), "by_method": means, "estimates": len(everything)}


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(estimate, name="pi.estimate")
    registry.add(summarize, name="pi.summarize")
