"""The served quickstart keeps Dagster's own output out of the terminal: in a log file, whose end it shows when Dagster
stops on its own; Ctrl-C stops the whole process group. Real child processes, a short Python program in Dagster's
place."""

import os
import signal
import sys
import textwrap
import threading
import time

from curation_assets.quickstart.cli import LOG_TAIL_LINES, start_logged, wait_in_foreground


def program(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_output_goes_to_the_log_and_its_end_is_shown_when_the_process_fails(tmp_path, capfd):
    log = tmp_path / "dagster-dev.log"
    log.write_text("an earlier start's lines\n")
    failing = program(
        """
        import sys
        for number in range(30):
            print(f"DEBUG line {number}", flush=True)
        print("Port 3000 is in use", file=sys.stderr)
        sys.exit(3)
        """
    )
    assert wait_in_foreground(start_logged(failing, log), log) == 3
    terminal = capfd.readouterr()
    written = log.read_text()
    assert written.startswith("an earlier start's lines\n"), "appended to, not replaced"
    assert "DEBUG line 0" in written and "Port 3000 is in use" in written
    assert "DEBUG" not in terminal.out, "nothing of the process on the terminal while it runs"
    shown = [line.strip() for line in terminal.err.splitlines()[1:]]
    assert "exit code 3" in terminal.err.splitlines()[0]
    assert shown[-1] == "Port 3000 is in use" and len(shown) == LOG_TAIL_LINES
    assert "DEBUG line 0" not in terminal.err, "the end of the log, not all of it"


def test_a_clean_exit_shows_nothing_and_without_a_log_the_output_is_the_terminals(tmp_path, capfd):
    log = tmp_path / "dagster-dev.log"
    assert wait_in_foreground(start_logged(program("print('quiet')"), log), log) == 0
    assert capfd.readouterr().err == ""
    assert wait_in_foreground(start_logged(program("print('shown here', flush=True)"), None), None) == 0
    assert "shown here" in capfd.readouterr().out


def test_ctrl_c_stops_the_process_and_its_children(tmp_path):
    log = tmp_path / "dagster-dev.log"
    pid_file = tmp_path / "child.pid"
    parent = program(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(600)
        """
    )
    process = start_logged(parent, log)
    while not pid_file.exists() or not pid_file.read_text():
        time.sleep(0.05)
    child = int(pid_file.read_text())
    # Ctrl-C reaches the quickstart as KeyboardInterrupt in its wait; send it to this thread as the terminal would.
    threading.Timer(0.5, lambda: signal.raise_signal(signal.SIGINT)).start()
    assert wait_in_foreground(process, log) == 0
    assert process.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the child of the stopped process is stopped too (one process group)"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_taken_dagster_port_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """`dagster dev` on a taken port hangs with the error in its log while the printed link opens the other program:
    the quickstart refuses first, with the way out, having started and written nothing."""
    import socket

    from curation_assets import state
    from curation_assets.quickstart.cli import main

    monkeypatch.setenv(state.STATE_DIR_ENV, str(tmp_path / "state"))
    # main sets the process's umask and SIGTERM handler for the command's life: this test's process gets them back.
    umask, on_sigterm = os.umask(0o077), signal.getsignal(signal.SIGTERM)
    try:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            assert main(["--dagster-port", str(port)]) == 2
    finally:
        os.umask(umask)
        signal.signal(signal.SIGTERM, on_sigterm)
    error = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in error and "--dagster-port" in error
    assert not (tmp_path / "state").exists(), "refused before the state folder, Argilla or any run"
