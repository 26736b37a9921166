"""The ``[schedule]`` table of a recipe: :class:`ScheduleSpec` and its validation.

The recipe loader calls :meth:`ScheduleSpec.from_table`; ``toolkit schedule`` reads the
result. Every problem is reported at once, each naming the file and the key
(``pi.toml: schedule.cron: ...``), as the rest of recipe validation does.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import validators as av

from toolkit.durations import format_duration, parse_duration
from toolkit.errors import RecipeError, RecipeErrors

__all__ = ["ScheduleSpec", "format_duration", "parse_duration"]

CATCHUP_POLICIES = ("none", "latest", "all")
OVERLAP_POLICIES = ("skip", "queue")
KEYS = ("cron", "every", "timezone", "catchup", "max_catchup", "overlap", "jitter")


def _check_cron(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        from toolkit.schedule.cron import CronExpression

        CronExpression.parse(value)  # raises CronError (a ValueError)


def _check_timezone(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    load_timezone(value)


def load_timezone(name: str):
    """The ``ZoneInfo`` for an IANA name; ``ValueError`` with a suggestion if unknown."""
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        pass
    problem = f"unknown timezone {name!r}"
    close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
    if close:
        problem += f" (did you mean {close[0]!r}?)"
    else:
        problem += " (use an IANA name such as 'Europe/Berlin' or 'UTC')"
    raise ValueError(problem)


_optional_positive = av.optional([av.instance_of(float), av.gt(0.0)])


@attrs.frozen(kw_only=True)
class ScheduleSpec:
    """When and how ``toolkit schedule`` fires a recipe. Build it with :meth:`from_table`."""

    cron: str | None = attrs.field(default=None, validator=[av.optional(av.instance_of(str)), _check_cron])
    every: float | None = attrs.field(
        default=None, converter=attrs.converters.optional(parse_duration), validator=_optional_positive
    )
    timezone: str = attrs.field(default="UTC", validator=[av.instance_of(str), _check_timezone])
    catchup: str = attrs.field(default="latest", validator=av.in_(CATCHUP_POLICIES))
    max_catchup: int = attrs.field(default=10, validator=[av.instance_of(int), av.ge(0)])
    overlap: str = attrs.field(default="skip", validator=av.in_(OVERLAP_POLICIES))
    jitter: float = attrs.field(default=0.0, converter=parse_duration, validator=av.ge(0.0))

    def __attrs_post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ValueError("a schedule needs exactly one of cron and every")

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], *, path: str | None, where: str = "schedule"
    ) -> ScheduleSpec:
        """Validate a ``[schedule]`` table; raise :class:`RecipeErrors` naming every problem."""
        errors: list[RecipeError] = []

        def problem(key: str | None, text: str) -> None:
            errors.append(RecipeError(path, f"{where}.{key}" if key else where, text))

        if not isinstance(table, Mapping):
            problem(None, f"must be a table, got {type(table).__name__}")
            raise RecipeErrors(errors)
        for key in table:
            if key not in KEYS:
                close = difflib.get_close_matches(str(key), KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
                problem(str(key), f"unknown key{hint}")

        values: dict[str, Any] = {}
        cron = table.get("cron")
        if cron is not None:
            if not isinstance(cron, str):
                problem("cron", f"must be a string such as '*/30 * * * *', got {type(cron).__name__}")
            else:
                from toolkit.schedule.cron import CronError, CronExpression

                try:
                    CronExpression.parse(cron)
                    values["cron"] = cron
                except CronError as exc:
                    problem("cron", str(exc))
        for key in ("every", "jitter"):
            if key in table:
                try:
                    values[key] = parse_duration(table[key])
                except ValueError as exc:
                    problem(key, str(exc))
        if values.get("every") == 0:
            problem("every", "must be longer than 0s")
            del values["every"]
        if "cron" in table and "every" in table:
            problem(None, "give either cron or every, not both")
        elif "cron" not in table and "every" not in table:
            problem(
                None, "needs cron (a cron expression such as '0 3 * * *') or every (a duration such as '15m')"
            )

        timezone = table.get("timezone", "UTC")
        if not isinstance(timezone, str):
            problem("timezone", f"must be a string such as 'Europe/Berlin', got {type(timezone).__name__}")
        else:
            try:
                load_timezone(timezone)
                values["timezone"] = timezone
            except ValueError as exc:
                problem("timezone", str(exc))

        for key, choices in (("catchup", CATCHUP_POLICIES), ("overlap", OVERLAP_POLICIES)):
            if key in table:
                value = table[key]
                if value in choices:
                    values[key] = value
                else:
                    close = difflib.get_close_matches(str(value), choices, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    problem(key, f"must be one of {' | '.join(choices)}, got {value!r}{hint}")

        if "max_catchup" in table:
            value = table["max_catchup"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problem("max_catchup", f"must be an integer >= 0, got {value!r}")
            else:
                values["max_catchup"] = value

        if errors:
            raise RecipeErrors(errors)
        return cls(**values)

    def to_table(self) -> dict[str, Any]:
        """The table :meth:`from_table` reads back into an equal spec (for ``tomli_w``)."""
        table: dict[str, Any] = {}
        if self.cron is not None:
            table["cron"] = self.cron
        if self.every is not None:
            table["every"] = format_duration(self.every)
        table.update(
            timezone=self.timezone,
            catchup=self.catchup,
            max_catchup=self.max_catchup,
            overlap=self.overlap,
            jitter=format_duration(self.jitter) if self.jitter else "0s",
        )
        return table

    def describe(self) -> str:
        """``cron '*/30 * * * *' (Europe/Berlin)`` or ``every 15m``: for log lines."""
        if self.cron is not None:
            return f"cron {self.cron!r} ({self.timezone})"
        return f"every {format_duration(self.every or 0.0)}"
