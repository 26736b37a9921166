"""Tasks of files.toml: count the words of a file; add the counts up."""

from pathlib import Path

import toolkit


def count_words(path: str, out: str) -> int:
    """Count the words of the file at `path`; write the count to `out`."""
    words = len(Path(path).read_text(encoding="utf-8").split())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(f"{words}\n", encoding="utf-8")
    return words


def total(inputs: list) -> dict:
    """The total of the counts, and the file with the most words."""
    biggest = max(inputs, key=lambda item: item["value"])
    return {"words": sum(item["value"] for item in inputs), "biggest": biggest["params"]["path"]}


@toolkit.hookimpl
def toolkit_register_tasks(registry):
    registry.add(count_words, name="files.count_words")
    registry.add(total, name="files.total")
