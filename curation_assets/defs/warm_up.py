"""Work a run will need later, done in a background thread while the run waits on the network.

The refresh runs its steps one after another in one process (defs/jobs.py). Its first step,
collected_feedback, spends much of its time waiting for Argilla's answers, when the process holds
no lock on the interpreter; change_statistics then paid, on every refresh, the import of matplotlib
for its PNG and plotly's first figure (the modules and templates it loads on first use): about a
second together, on this machine. Started at the beginning of collected_feedback, that work happens
in the waits instead. change_statistics joins the thread before it charts anything
(`finish_warm_ups`), so no chart library is ever used by two threads at once; if the warm-up failed,
the step's own import raises the error where it belongs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_started: list[threading.Thread] = []
_lock = threading.Lock()


def start_warm_up(work: Callable[[], object], name: str) -> None:
    """Run `work` in a daemon thread; its result is dropped, and so is any error (the real use reports it)."""

    def run() -> None:
        try:
            work()
        except Exception:  # the step that needs the libraries uses them itself and reports any error there
            pass

    thread = threading.Thread(target=run, name=f"warm-up-{name}", daemon=True)
    with _lock:
        _started.append(thread)
    thread.start()


def finish_warm_ups() -> None:
    """Wait for every warm-up started in this process (none: returns at once)."""
    with _lock:
        started = list(_started)
        _started.clear()
    for thread in started:
        thread.join()
