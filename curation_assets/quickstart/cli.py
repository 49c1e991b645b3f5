"""`curation-quickstart`: the embedded Argilla, Dagster, and the pipeline's first run, in one command."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from .local_argilla.bootstrap import read_credentials
from .local_argilla.config import DEFAULT_PORT, LocalArgillaConfig, default_data_dir
from .local_argilla.process import ArgillaServerProcess
from .simulation import SIMULATION_MARK, SimulationPlan, simulate_annotator

DAGSTER_PORT = 3000


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Stopped by a signal, still stop the Argilla and Dagster this command started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    project_state = arguments.state_dir.resolve()
    argilla_config = LocalArgillaConfig(data_dir=arguments.argilla_data_dir.resolve(), port=arguments.argilla_port)
    os.environ.setdefault("DAGSTER_HOME", str(project_state / "dagster"))
    os.environ.setdefault("CURATION_OUTPUT_DIR", str(project_state / "output"))
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    # An empty dagster.yaml means "keep runs, events and storage in DAGSTER_HOME", and silences the warning.
    (dagster_home / "dagster.yaml").touch()

    argilla_server = _ensure_argilla(argilla_config)
    credentials = read_credentials(argilla_config)
    os.environ["ARGILLA_API_URL"] = argilla_config.url
    os.environ["ARGILLA_API_KEY"] = credentials.owner.api_key
    try:
        _run_first_materializations(arguments.source)
        if arguments.simulate:
            _simulate(argilla_config.url, credentials, arguments.simulate)
        if arguments.once:
            _run_refresh()
            _print_summary(argilla_config, credentials, dagster_url=None)
            return 0
        return _serve_dagster(argilla_config, credentials, arguments.dagster_port)
    finally:
        if argilla_server is not None:
            argilla_server.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation-quickstart",
        description="Start the embedded Argilla and Dagster, and push the Dolly excerpt to the annotators.",
    )
    parser.add_argument("--simulate", type=float, nargs="?", const=0.3, default=None, metavar="SHARE",
                        help="simulated annotators answer this share of their records (default 0.3)")
    parser.add_argument("--once", action="store_true",
                        help="run the whole pipeline once, print where everything is, and exit (no UI)")
    parser.add_argument("--source", default=None, help="Hub dataset id or local jsonl/parquet/csv (default: shipped excerpt)")
    parser.add_argument("--state-dir", type=Path, default=Path(".local"), help="Dagster home and outputs (default: %(default)s)")
    parser.add_argument("--argilla-data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--argilla-port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--dagster-port", type=int, default=DAGSTER_PORT)
    return parser  # fmt: skip


def _ensure_argilla(config: LocalArgillaConfig) -> ArgillaServerProcess | None:
    """Reuse an embedded Argilla already serving this data dir; otherwise start one."""
    server = ArgillaServerProcess(config)
    if server.is_answering() and read_credentials(config) is not None:
        print(f"Using the Argilla already running at {config.url}")
        return None
    print(f"Starting the embedded Argilla at {config.url} (data: {config.data_dir}) ...", flush=True)
    server.start()
    print(server.log_tail().split("Argilla is starting")[0].strip(), flush=True)
    return server


def _run_config(source: str | None) -> dg.RunConfig:
    from .assets.source import DollySourceConfig

    return dg.RunConfig(ops={"raw_dolly": DollySourceConfig(source=source)} if source else {})


def _run_first_materializations(source: str | None) -> None:
    from .definitions import defs

    instance = dg.DagsterInstance.get()
    print("Materializing raw_dolly → quality_signals → annotation_assignments → annotator_shards ...", flush=True)
    plan = defs.resolve_job_def("plan_assignments").execute_in_process(instance=instance, run_config=_run_config(source))
    annotators = list(plan.output_for_node("annotation_assignments")["annotator"].unique())
    instance.add_dynamic_partitions("annotators", annotators)
    shard_job = defs.resolve_job_def("push_shards")
    for annotator in sorted(instance.get_dynamic_partitions("annotators")):
        shard_job.execute_in_process(instance=instance, partition_key=annotator)


def _simulate(url: str, credentials, share: float) -> None:
    plan = SimulationPlan(share=share)
    print(f"SIMULATION: annotators answer {share:.0%} of their records (edits are marked {SIMULATION_MARK!r}) ...")
    for account in credentials.annotators:
        actions = simulate_annotator(url, account.api_key, account.username, plan)
        print(f"  simulated {account.username}: {dict(actions)}")


def _run_refresh() -> None:
    from .definitions import defs

    print("Materializing collected_feedback → change_statistics → curated_dolly ...", flush=True)
    defs.resolve_job_def("refresh_curation").execute_in_process(instance=dg.DagsterInstance.get())


def _print_summary(config: LocalArgillaConfig, credentials, dagster_url: str | None) -> None:
    print()
    if dagster_url:
        print(f"Dagster UI:   {dagster_url}")
    print(f"Argilla UI:   {config.url}")
    print(f"Outputs:      {os.environ['CURATION_OUTPUT_DIR']}")
    print("Annotator logins (also: curation-argilla credentials):")
    for account in credentials.annotators:
        print(f"  {account.username:<10} password: {account.password}")


def _serve_dagster(config: LocalArgillaConfig, credentials, port: int) -> int:
    """`dagster dev` in the foreground: the UI, plus the daemon that runs the sensor."""
    command = [sys.executable, "-m", "dagster", "dev", "-m", "curation_assets.definitions", "-p", str(port)]
    dagster = subprocess.Popen(command, start_new_session=True)
    _print_summary(config, credentials, dagster_url=f"http://127.0.0.1:{port}")
    print("When an annotator submits in Argilla, the sensor refreshes the statistics and the curated dataset.")
    print("Press Ctrl-C to stop Dagster and Argilla.", flush=True)
    try:
        while dagster.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        if dagster.poll() is None:
            os.killpg(dagster.pid, signal.SIGTERM)
            try:
                dagster.wait(timeout=30)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                # A second Ctrl-C, or a shutdown that hangs: stop it now rather than print a traceback.
                os.killpg(dagster.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
