"""Rich output of `spatialvlm check`: the per-layer checkpoint detail (--verbose) and the summary table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from spatialvlm_cli.check.results import CheckResult
from spatialvlm_cli.model.attention import AttentionCall


def verdict(passed: bool) -> Text:
    return Text("PASS", style="bold green") if passed else Text("FAIL", style="bold red")


class CheckpointPrinter:
    """Prints one layer's nine checkpoints as the seeds did (`[CHECKPOINT n] name`), with our verdicts."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, capture: AttentionCall, results: list[CheckResult]) -> None:
        mode = results[0].mode if results else "?"
        tokens = capture.q.shape[2]
        self.console.print(Text(f"── layer {capture.layer} · {mode} · prefill of {tokens} tokens", style="bold"))
        for result in results:
            line = Text(f"[CHECKPOINT {result.checkpoint_no}] {result.name}: ")
            line.append_text(verdict(result.passed))
            line.append(f"\n    {result.detail}", style="dim" if result.passed else "red")
            self.console.print(line)


def summary_table(results: Sequence[CheckResult]) -> Table:
    """One row per check per mode: per-layer checkpoints are folded over layers (passed layers / layers); the
    detail is the first failure's, else the first layer's."""
    table = Table(title="spatialvlm check", show_lines=False)
    for column, justify in (("mode", "left"), ("#", "right"), ("check", "left"), ("layers", "right"),
                            ("verdict", "center"), ("detail", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    groups: dict[tuple[str, int | None, str], list[CheckResult]] = {}
    for result in results:
        groups.setdefault((result.mode, result.checkpoint_no, result.name), []).append(result)
    for (mode, number, name), group in groups.items():
        failed = [result for result in group if not result.passed]
        shown = failed[0] if failed else group[0]
        layered = [result for result in group if result.layer is not None]
        layers = f"{len(layered) - len(failed)}/{len(layered)}" if layered else "–"
        prefix = f"layer {shown.layer}: " if failed and shown.layer is not None else ""
        table.add_row(mode, "" if number is None else str(number), name, layers, verdict(not failed),
                      prefix + shown.detail)
    return table


def print_summary(console: Console, results: Sequence[CheckResult], meta: dict[str, Any]) -> None:
    console.print(summary_table(results))
    failed = sum(not result.passed for result in results)
    scene = meta.get("scene", "?")
    status = "[bold green]all passed[/]" if not failed else f"[bold red]{failed} failed[/]"
    console.print(f"{len(results)} checks on {meta.get('model', '?')} with {scene}: {status}")
