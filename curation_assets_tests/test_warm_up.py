"""The refresh's background warm-up: it runs off the main thread, is waited for, and its errors stay silent."""

import subprocess
import sys
import threading

from curation_assets.defs.warm_up import finish_warm_ups, start_warm_up


def test_a_warm_up_runs_in_another_thread_and_is_done_once_waited_for():
    ran_in = []
    release = threading.Event()

    def work():
        release.wait(5)
        ran_in.append(threading.current_thread().name)

    start_warm_up(work, "test")
    start_warm_up(lambda: 1 / 0, "failing")  # a failure is left to the step that needs the work
    release.set()
    finish_warm_ups()
    assert ran_in == ["warm-up-test"]
    finish_warm_ups()  # nothing left to wait for


def test_the_chart_warm_up_loads_what_the_charts_use_first():
    # In an interpreter of its own: in this one, other tests may have loaded the libraries already.
    script = (
        "import sys\n"
        "from curation_assets.logic.statistics import warm_up_charts\n"
        f"used = {CHART_MODULES!r}\n"
        "before = used & set(sys.modules)\n"
        "warm_up_charts()\n"
        "print(sorted(before), sorted(used - set(sys.modules)))\n"
    )
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == "[] []", "none of them loaded before, all of them after"


CHART_MODULES = {"matplotlib.figure", "matplotlib.backends.backend_agg", "plotly.graph_objects"}
