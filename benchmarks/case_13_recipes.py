"""Case 13: big and hostile recipes. ``toolkit validate`` (a fresh process, e2e) of:

- 100,000 ``[[task]]`` tables (built-in ``shell`` tasks: their commands are split into
  words as they are read, the dearest task to validate) and the same recipe at 20,000, to
  show that validation grows in proportion to the recipe (it was quadratic: 94 s at 20k);
- a diamond of includes 24 levels deep (2**24 paths to the last file: each file is read
  once);
- 40 vars that each double the one before (refused with one error, in bounded memory).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from common import CaseResult, Config, median, ratio, spread, toolkit_script

KEY = "13"
TITLE = "recipes: validation of big and hostile recipes"

TASK = '[[task]]\nname = "t{i}"\nuses = "shell"\nparams = {{ cmd = "true" }}\n'


def many(folder: Path, n: int) -> Path:
    path = folder / f"many-{n}.toml"
    with open(path, "w") as f:
        f.write(f'[recipe]\nname = "many{n}"\n')
        for i in range(n):
            f.write(TASK.format(i=i))
    return path


def diamond(folder: Path, depth: int) -> Path:
    for i in range(depth):
        nxt = f'"d{i + 1}.toml", "e{i + 1}.toml"' if i < depth - 1 else ""
        for name in (f"d{i}.toml", f"e{i}.toml"):
            (folder / name).write_text(f"[recipe]\ninclude = [{nxt}]\n[vars]\nv{i} = {i}\n")
    path = folder / "diamond.toml"
    path.write_text('[recipe]\nname = "diamond"\ninclude = ["d0.toml"]\n' + TASK.format(i=0))
    return path


def doubling(folder: Path, n: int) -> Path:
    lines = ['[recipe]\nname = "doubling"\n[vars]\nv0 = "xx"']
    lines += [f'v{i} = "${{vars.v{i - 1}}}${{vars.v{i - 1}}}"' for i in range(1, n)]
    path = folder / "doubling.toml"
    path.write_text("\n".join(lines) + "\n" + TASK.format(i=0).replace("true", f"echo ${{vars.v{n - 1}}}"))
    return path


def validate(path: Path, expect: int) -> float | None:
    t0 = time.perf_counter()
    proc = subprocess.run([*toolkit_script(), "validate", str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall if proc.returncode == expect else None


def run(cfg: Config) -> CaseResult:
    folder = cfg.work / "recipes"
    folder.mkdir(parents=True, exist_ok=True)
    big, small = (2_000, 400) if cfg.quick else (100_000, 20_000)
    cases = [
        (f"{big:,} [[task]] tables", many(folder, big), 0),
        (f"{small:,} [[task]] tables", many(folder, small), 0),
        ("include diamond, 24 levels", diamond(folder, 12 if cfg.quick else 24), 0),
        ("40 self-doubling vars (refused)", doubling(folder, 40), 2),
    ]
    out = CaseResult(KEY, TITLE)
    samples: dict[str, list[float | None]] = {label: [] for label, _, _ in cases}
    for _ in range(cfg.reps):
        for label, path, expect in cases:
            samples[label].append(validate(path, expect))
    out.headers = ["toolkit validate", "wall s", "range s"]
    for label, _, _ in cases:
        s = median(samples[label])
        out.rows.append([label, "failed" if s is None else f"{s:.2f}", spread(samples[label])])
    first = median(samples[cases[0][0]])
    out.target(
        f"{big:,} tables validate",
        first,
        "< 5 s",
        None if first is None else first < 5.0,
        "failed" if first is None else f"{first:.2f} s",
    )
    per = ratio(first, median(samples[cases[1][0]]))
    out.target(
        f"{big:,} / {small:,} tables (linear: ~{big // small})",
        per,
        f"<= {big // small * 1.5:.1f}x",
        None if per is None else per <= big // small * 1.5,
        "" if per is None else f"{per:.1f}x",
    )
    for label, _, _ in cases[2:]:
        s = median(samples[label])
        out.target(label, s, "< 2 s", None if s is None else s < 2.0, "failed" if s is None else f"{s:.2f} s")
    return out
