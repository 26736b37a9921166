"""``toolkit runs --prune [--keep N] [--recipe NAME] [--dry-run]``: retention by hand.

Not a plugin of its own: the ``runs`` command hands ``--prune`` over to this module.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import UsageError


def prune_command(args) -> int:
    from toolkit.store.history import recipe_dirs
    from toolkit.store.retention import keep_of, prune

    if not args.prune:
        raise UsageError("--keep and --dry-run go with --prune: toolkit runs --prune --keep N")
    if args.keep is not None and args.keep < 1:
        raise UsageError("--keep must be at least 1 (the run latest points to is always kept)")
    output = Path(args.output)
    bases = [output / args.recipe] if args.recipe else recipe_dirs(output)
    bases = [b for b in bases if b.is_dir()]
    if not bases:
        where = output / args.recipe if args.recipe else output
        print(f"no runs in {where}")
        return 0
    deleted = kept = pruned = 0
    verb = "would delete" if args.dry_run else "deleted"
    for base in bases:
        keep = args.keep if args.keep is not None else keep_of(base)
        if keep < 1:
            print(f"{base.name}: keeps every run (its recipe has no [output] keep; --keep N prunes it)")
            continue
        result = prune(base, keep, dry_run=args.dry_run)
        pruned += 1
        for path in result.deleted:
            print(f"{verb} {path}")
        for path, why in result.spared:
            print(f"kept {path}: {why}")
        for path, why in result.failed:
            print(f"could not delete {path}: {why}")
        deleted += len(result.deleted)
        kept += len(result.kept) + len(result.spared) + len(result.failed)
    if pruned:
        print(f"{verb} {deleted} run director{'y' if deleted == 1 else 'ies'}, kept {kept}")
    return 0
