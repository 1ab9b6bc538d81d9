"""The progress line: events, share, events/s and ETA; drawn only on a terminal."""

from __future__ import annotations

import io

from worker.evaluation.progress import Progress, progress_line


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_says_rate_and_eta() -> None:
    assert progress_line(120, 500, 6.0) == "  120/500 events   24%  20.0 events/s  ETA 0:19"
    assert progress_line(0, 500, 0.0).endswith("0.0 events/s  ETA -:--")
    assert progress_line(10, 10_000, 1.0).endswith("ETA 16:39")
    assert progress_line(10, 100_000, 1.0).endswith("ETA 2:46:39")


def test_drawn_on_a_terminal_only() -> None:
    ticks = iter([0.0, 1.0, 2.0, 2.1, 3.0])
    terminal = Terminal()
    progress = Progress(4, terminal, clock=lambda: next(ticks))
    progress.advance(2)  # t=1: first draw
    progress.advance(1)  # t=2.0: 1 s later: drawn
    progress.advance(0)  # t=2.1: too soon: not drawn
    progress.advance(1)  # t=3.0: the last one is always drawn
    progress.close()
    frames = terminal.getvalue().split("\r")[1:]
    assert [f.split(" events")[0].strip() for f in frames] == ["2/4", "3/4", "4/4"]
    assert terminal.getvalue().endswith("\n")

    pipe = io.StringIO()
    quiet = Progress(4, pipe)
    quiet.advance(4)
    quiet.close()
    assert pipe.getvalue() == "" and quiet.done == 4
