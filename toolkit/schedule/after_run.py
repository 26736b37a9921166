"""What ``toolkit schedule`` does after each firing's run ends: ``[output] keep``
retention, and for a run that was killed before it could finish (its manifest still
says running), the report and the notification the run could not send itself."""

from __future__ import annotations

from pathlib import Path


def after_firing(recipe_path: Path, run_id: str, overrides: tuple[str, ...] = ()) -> list[str]:
    """Lines for the scheduler's log: what was deleted or sent. Raises nothing a
    recipe could cause (a recipe that no longer reads is reported as a line).
    ``overrides``: the scheduler's ``--set``, which its runs got too (``output.dir``
    says where the run is, ``output.keep`` how many to keep)."""
    from toolkit.errors import ToolkitError
    from toolkit.recipe import read_recipe

    try:
        recipe = read_recipe(str(recipe_path), overrides=overrides)
    except ToolkitError as exc:
        return [f"retention and notification skipped: {exc.message}"]
    lines = []
    base = Path(recipe.output.dir) / recipe.name
    run_dir = base / run_id
    lines += _dead_run(recipe, run_dir)
    if recipe.output.keep > 0:
        from toolkit.store.retention import prune

        result = prune(base, recipe.output.keep)
        lines += [f"[output] keep = {recipe.output.keep}: deleted {p.name}" for p in result.deleted]
        lines += [f"[output] keep: could not delete {p.name}: {why}" for p, why in result.failed]
    return lines


def _dead_run(recipe, run_dir: Path) -> list[str]:
    from toolkit.store.heads import read_head
    from toolkit.store.history import effective_status

    head = read_head(run_dir)
    if head is None or effective_status(head, run_dir) != "dead":
        return []
    from toolkit.report import write_report
    from toolkit.report.data import collect

    lines = []
    try:
        write_report(run_dir, status="dead")
        lines.append(f"run {run_dir.name} was killed: wrote its report.html")
    except Exception as exc:  # the daemon goes on whatever this run left behind
        lines.append(f"run {run_dir.name} was killed; its report could not be written: {exc}")
    if recipe.notify is not None:
        from toolkit.notify import notify

        counts = collect(run_dir, status="dead")["summary"]["counts"]
        notify(recipe.notify, run_dir, "dead", counts, cwd=recipe.base_dir)
        lines.append(f"run {run_dir.name} was killed: notified (see its notify.log)")
    return lines
