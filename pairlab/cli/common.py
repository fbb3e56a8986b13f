"""What every command module shares: progress lines and --set overrides."""
from __future__ import annotations


def progress_printer(prefix: str):
    state = {"last": -1.0}

    def report(fraction: float, message: str) -> None:
        if fraction - state["last"] >= 0.05 or fraction >= 1.0:
            state["last"] = fraction
            print(f"{prefix} {fraction * 100:5.1f}%  {message}", flush=True)

    return report



def overrides(items) -> list[str]:
    from ..lab import parse_overrides

    out = []
    for item in items or []:
        out += parse_overrides(item)
    return out

