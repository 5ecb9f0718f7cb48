"""One progress-callback signature for the CLI's progress bar, `st.progress` and the tests.

Long-running functions take `progress: ProgressCallback | None` and call it with a `Progress`
event. `stage` names the step ("decode", "epoch"...), `done`/`total` give the fraction and
`metrics` carries numbers worth plotting live (losses per epoch, for instance).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


@dataclass
class Progress:
    done: float
    total: float
    message: str = ""
    stage: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else max(0.0, min(1.0, self.done / self.total))


ProgressCallback = Callable[[Progress], None]


def report(callback: ProgressCallback | None, done: float, total: float, message: str = "",
           stage: str = "", **metrics: Any) -> None:
    """Call `callback` if there is one; keeps call sites one line long."""
    if callback is not None:
        callback(Progress(done, total, message, stage, metrics))


def scaled(callback: ProgressCallback | None, start: float, end: float) -> ProgressCallback | None:
    """Map a sub-task's 0..1 progress onto `start..end` of the parent's bar."""
    if callback is None:
        return None

    def inner(p: Progress) -> None:
        callback(Progress(start + (end - start) * p.fraction, 1.0, p.message, p.stage, p.metrics))

    return inner


@contextmanager
def console_progress(description: str, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A tqdm bar on stderr driven by Progress events (disabled for `--json` or non-TTY use)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = None  # created on the first event, so a command that fails at once prints no bar

    def update(p: Progress) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=1000, desc=description, file=sys.stderr, leave=False,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} "
                                  "{postfix}")
        bar.n = int(round(1000 * p.fraction))
        text = p.message
        if p.metrics:
            text += " " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in p.metrics.items())
        bar.set_postfix_str(text.strip()[:80], refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
