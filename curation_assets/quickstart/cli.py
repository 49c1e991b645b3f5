"""`curation-quickstart`: declare a curation project, start the embedded Argilla and Dagster, run the pipeline once.

Without flags it runs every project declared under curation_assets/defs/projects/ (the shipped
Dolly excerpt to begin with). `--source FILE_OR_HUB_ID` declares a project of your own (or
updates one, with `--project NAME`) and runs that one; the definition it writes is what every
later run, the sensor and the Dagster UI use.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import dagster as dg

from .. import state
from ..argilla_adapter.client import ArgillaClient
from ..argilla_adapter.errors import ArgillaError
from ..argilla_adapter.rest import Connection
from ..dagster_storage import INSTANCE_OVERRIDES as KEPT_OPEN_STORAGE
from ..defs.jobs import every_partition_tags
from ..local_argilla.bootstrap import Credentials, read_credentials
from ..local_argilla.config import DATA_DIR_ENV, DEFAULT_PORT, LocalArgillaConfig, bind_refusal, default_data_dir
from ..local_argilla.process import ArgillaServerProcess
from ..logic.webhook_events import secret_key
from ..server_identity import ServerIdentityError
from ..team.dagster_instance import write_instance_settings
from ..team.postgres import PostgresUnavailableError
from ..team.redis_server import RedisUnavailableError
from ..team.services import DAGSTER_DATABASE_URL_ENV, TeamServices, remove_private_postgres
from ..webhooks.marks import WebhookMarks
from ..webhooks.receiver import DEFAULT_PORT as WEBHOOK_PORT
from ..webhooks.receiver import WebhookReceiver
from ..webhooks.registration import register as register_webhook
from ..webhooks.secret import save_secret
from . import declare
from .console import QUIET_RUN_CONFIG, VERBOSE_RUN_CONFIG, failure_message, run_summary, simulated_line
from .dagster_web_guard import guarded_dagster_dev_command
from .simulation import SIMULATION_MARK, SimulationPlan, simulate_annotator, simulate_reviewer

DAGSTER_PORT = 3000
# Kept on disk in DAGSTER_HOME: runs, events and storage stay there; no usage statistics leave the machine.
# The run queue hands a requested run to the launcher every second (Dagster's default: 5 s), part of a refresh's
# freshness budget (bench/freshness.py).
# Runs and events go to Dagster's SQLite files through connections kept open (dagster_storage.py): a cycle stores
# a few hundred events, and opening and checkpointing a database for each one was a second of every cycle.
DAGSTER_INSTANCE_SETTINGS = {
    "telemetry": {"enabled": False},
    "run_queue": {"dequeue_interval_seconds": 1},
    **KEPT_OPEN_STORAGE,
}
# The team profile's state folder, inside the local one: its own Argilla data dir, DAGSTER_HOME, outputs and
# services, so that answers collected from one profile's server never mix with the other's (docs/team.md).
TEAM_STATE_FOLDER = "team"
TEAM_DEFAULT_WORKERS = 2


class QuickstartError(RuntimeError):
    """Something the user has to act on; the message says what."""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.argilla_workers is not None and (arguments.argilla_workers < 1 or arguments.profile != "team"):
        parser.error("--argilla-workers N (N >= 1) goes with --profile team: several workers need PostgreSQL and Redis")
    # Stopped by a signal, still stop the Argilla and Dagster this command started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Everything this command and its runs write (answers, names, secrets) is for its owner only.
    os.umask(0o077)
    if arguments.profile == "team":
        os.environ[state.STATE_DIR_ENV] = str(state.state_dir() / TEAM_STATE_FOLDER)
        os.environ.pop(DATA_DIR_ENV, None)  # the team profile's Argilla data dir is its own
    if not arguments.verbose:
        warnings.filterwarnings("ignore", category=dg.BetaWarning)
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    try:
        if arguments.fresh and not start_over(arguments.yes, team=arguments.profile == "team"):
            return 1
        return _run(arguments)
    except (
        QuickstartError,
        declare.SourceSwitchRefused,
        ServerIdentityError,
        PostgresUnavailableError,
        RedisUnavailableError,
        ValueError,
    ) as error:
        print(f"curation-quickstart: {error}", file=sys.stderr)
        return 2


def _run(arguments: argparse.Namespace) -> int:
    if not arguments.once:
        refuse_a_taken_port(arguments.dagster_port)
    state.ensure_state_dir()
    if arguments.profile == "team":
        with TeamServices(team_services_folder()) as services:
            print(f"Team profile: PostgreSQL and Redis for {_shown(state.state_dir())} ({_services_shown(services)})")
            # Dagster's webserver, daemon and runs read the URL from the environment (dagster.yaml names the variable).
            os.environ[DAGSTER_DATABASE_URL_ENV] = services.database_urls.dagster
            dagster_home = prepare_dagster_home(team=True)
            argilla_config = LocalArgillaConfig(
                data_dir=default_data_dir(),
                port=arguments.argilla_port,
                database_url=services.database_urls.argilla,
                redis_url=services.redis_url,
            )
            return _run_with(arguments, dagster_home, argilla_config, arguments.argilla_workers or TEAM_DEFAULT_WORKERS)
    return _run_with(
        arguments, prepare_dagster_home(), LocalArgillaConfig(default_data_dir(), port=arguments.argilla_port), 1
    )


def refuse_a_taken_port(port: int) -> None:
    """Before any work: `dagster dev` on a taken port does not stop, it hangs with the error in its log, while its
    daemon runs on and the printed link opens whatever holds the port."""
    error = bind_refusal("127.0.0.1", port)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        raise QuickstartError(
            f"port {port} on 127.0.0.1 is already in use (another Dagster, or a quickstart still running?): "
            "stop it, or pass --dagster-port with a free port"
        )
    raise QuickstartError(f"cannot serve Dagster on 127.0.0.1:{port}: {error.strerror}")


def _run_with(
    arguments: argparse.Namespace, dagster_home: Path, argilla_config: LocalArgillaConfig, workers: int
) -> int:
    argilla_server, created_accounts = _ensure_argilla(argilla_config, workers)
    credentials = read_credentials(argilla_config)
    os.environ["ARGILLA_API_URL"] = argilla_config.url
    os.environ["ARGILLA_API_KEY"] = credentials.owner.api_key
    try:
        with ArgillaClient(Connection(argilla_config.url, credentials.owner.api_key)) as argilla:
            names = _chosen_projects(arguments, argilla)
        from ..definitions import defs  # after declaring: the definitions read the projects' files

        run_config = VERBOSE_RUN_CONFIG if arguments.verbose else QUIET_RUN_CONFIG
        for name in names:
            if not _plan_and_push(defs, name, run_config):
                return 1
        if arguments.simulate:
            _simulate(argilla_config.url, credentials, arguments.simulate, arguments.simulate_pace, names)
        if arguments.once:
            for name in names:
                if not _refresh(defs, name, run_config):
                    return 1
                if _has_reviews(name):
                    if not _push_reviews(defs, name, run_config):
                        return 1
                    if arguments.simulate:
                        _simulate_reviewers(argilla_config.url, credentials, name)
                    if not _refresh(defs, name, run_config):
                        return 1
            _print_where(
                argilla_config, credentials, created_accounts, names, dagster_home, dagster_url=None,
                argilla_stops=argilla_server is not None,
            )  # fmt: skip
            return 0
        webhooks = None if arguments.no_webhooks else start_webhooks(argilla_config.url, credentials.owner.api_key)
        try:
            return _serve_dagster(
                argilla_config, credentials, created_accounts, names, dagster_home, arguments.dagster_port,
                verbose=arguments.verbose,
            )  # fmt: skip
        finally:
            if webhooks is not None:
                webhooks.close()
    finally:
        if argilla_server is not None:
            argilla_server.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation-quickstart",
        description=(
            "Declare a curation project, start the embedded Argilla and Dagster, and run the pipeline once. "
            "Without --source or --project: every project declared under curation_assets/defs/projects/."
        ),
    )
    project = parser.add_argument_group("the project (written to curation_assets/defs/projects/NAME/defs.yaml)")
    project.add_argument(
        "--project", help="the project to run, declare or update (default with --source: named after it)"
    )
    project.add_argument(
        "--source", help="a local .jsonl/.json/.parquet/.csv file, a Hub dataset id, or shipped:dolly-excerpt"
    )
    project.add_argument("--split", help="split of a Hub dataset (default: train)")
    project.add_argument(
        "--column-mapping",
        type=declare.parse_column_mapping,
        metavar="YOURS=OURS,...",
        help="your column names → instruction, context, response, category (e.g. prompt=instruction,answer=response)",
    )
    project.add_argument(
        "--id-column", help="the column holding record ids, or 'derive' (ids from each record's content)"
    )
    project.add_argument(
        "--categories",
        type=_names_or_keyword,
        metavar="dolly|any|NAME,...",
        help="the task categories records may have (default: Dolly's eight)",
    )
    project.add_argument(
        "--annotators",
        type=_names_or_keyword,
        metavar="NAME,...|all",
        help="the team (default: every Argilla annotator)",
    )
    project.add_argument(
        "--overlap",
        type=float,
        metavar="SHARE",
        help="share of the records several annotators get, to measure agreement (e.g. 0.1)",
    )
    project.add_argument(
        "--overlap-annotators", type=int, metavar="K", help="how many annotators get each overlap record (default 2)"
    )
    project.add_argument(
        "--reviewers", type=_names_or_keyword, metavar="NAME,...", help="who adjudicates disagreements"
    )
    project.add_argument(
        "--until-adjudicated",
        choices=["hold_out", "majority"],
        help="a disagreement not adjudicated yet: left out (default) or the majority's version",
    )
    project.add_argument(
        "--hub-repo", help="Hub dataset repo to publish the curated dataset to (needs HF_TOKEN); '' for files only"
    )
    project.add_argument(
        "--replace-source",
        action="store_true",
        help="allow switching an existing project's source: every answer is kept, unanswered old records withdrawn",
    )
    run = parser.add_argument_group("the run")
    run.add_argument(
        "--simulate",
        type=float,
        nargs="?",
        const=0.3,
        default=None,
        metavar="SHARE",
        help="simulated annotators answer this share of their records (default 0.3)",
    )
    run.add_argument(
        "--simulate-pace",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="simulated annotators spend about this long on a record, each at a speed of their own "
        "(default 0: as fast as the server answers); they work side by side",
    )
    run.add_argument(
        "--once", action="store_true", help="run the whole pipeline once, print where everything is, and exit (no UI)"
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="first delete this clone's state (.local/: Argilla's data, Dagster's runs, outputs)",
    )
    run.add_argument("--yes", action="store_true", help="with --fresh: do not ask for confirmation")
    run.add_argument("--verbose", action="store_true", help="show Dagster's event stream and warnings")
    run.add_argument(
        "--profile",
        choices=["local", "team"],
        default="local",
        help="local (default): Argilla on SQLite, one process; team: Argilla on PostgreSQL with several workers and "
        "Dagster's instance on PostgreSQL with a run queue (docs/team.md; state in .local/team/)",
    )
    run.add_argument(
        "--argilla-workers",
        type=int,
        default=None,
        metavar="N",
        help=f"with --profile team: Argilla server processes (default {TEAM_DEFAULT_WORKERS})",
    )
    run.add_argument("--argilla-port", type=int, default=DEFAULT_PORT)
    run.add_argument("--dagster-port", type=int, default=DAGSTER_PORT)
    run.add_argument(
        "--no-webhooks",
        action="store_true",
        help="do not register Argilla's answer webhook: the sensor then notices answers by polling, every 30 s",
    )
    return parser  # fmt: skip


def _names_or_keyword(text: str) -> list[str] | str:
    """ "all", "any" or "dolly" as they are; otherwise a comma-separated list of names."""
    if text.strip() in ("all", "any", "dolly"):
        return text.strip()
    return [name.strip() for name in text.split(",") if name.strip()]


# -- state ----------------------------------------------------------------------------------


def prepare_dagster_home(team: bool = False) -> Path:
    """DAGSTER_HOME in the state folder, so runs, events and storage persist and stay in this clone.

    The team profile's instance keeps them in PostgreSQL, with a run queue and a pool limit (team/dagster_instance.py);
    its dagster.yaml is rewritten on every start, so that it follows the code. Otherwise settings missing from
    dagster.yaml are added and the ones there (yours) are kept.
    """
    import yaml

    home = state.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    settings_file = home / "dagster.yaml"
    if team:
        write_instance_settings(home)
    else:
        settings = (yaml.safe_load(settings_file.read_text()) if settings_file.exists() else None) or {}
        completed = {**DAGSTER_INSTANCE_SETTINGS, **settings}
        if "run_coordinator" in settings:
            completed.pop("run_queue", None)  # Dagster refuses both: a run coordinator of your own is kept as it is
        if "storage" in settings:  # likewise a storage of your own (e.g. PostgreSQL)
            for key in KEPT_OPEN_STORAGE:
                completed.pop(key, None)
        if completed != settings:
            settings_file.write_text(yaml.safe_dump(completed, sort_keys=False))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def start_over(assume_yes: bool, team: bool = False) -> bool:
    """Delete this clone's state folder (and only it), after confirmation; False if the user declined."""
    folder = state.state_dir()
    if not folder.exists():
        return True
    config = LocalArgillaConfig(data_dir=state.argilla_data_dir())
    if config.data_dir.exists() and ArgillaServerProcess(config).is_answering():
        raise QuickstartError(
            f"an Argilla answers at {config.url} and may be serving {config.data_dir}: stop it first, then rerun with --fresh"
        )
    contents = ", ".join(sorted(child.name + "/" for child in folder.iterdir() if child.is_dir())) or "no folders"
    print(
        f"--fresh deletes {folder} ({contents}): every Argilla account, record and answer there, Dagster's run history, all outputs."
    )
    if not assume_yes:
        if not sys.stdin.isatty():
            raise QuickstartError("--fresh needs a confirmation: run it in a terminal, or add --yes")
        if input("Type 'yes' to delete it: ").strip() != "yes":
            print("Nothing deleted.")
            return False
    shutil.rmtree(folder)
    if team:
        # As root the private PostgreSQL cluster lives outside the state folder (team/services.py): it goes too.
        remove_private_postgres(team_services_folder())
    print(f"Deleted {folder}.")
    return True


def team_services_folder() -> Path:
    return state.state_dir() / "services"


def _services_shown(services: TeamServices) -> str:
    if services.postgres is None:
        return "the ones the environment names"
    return f"a private PostgreSQL on 127.0.0.1:{services.postgres.port}, a private Redis socket"


# -- Argilla --------------------------------------------------------------------------------


def _ensure_argilla(config: LocalArgillaConfig, workers: int) -> tuple[ArgillaServerProcess | None, list[str]]:
    """Reuse an embedded Argilla already serving this data dir, or start one; returns it and the accounts it created."""
    server = ArgillaServerProcess(config, workers=workers)
    if server.is_answering() and read_credentials(config) is not None:
        print(f"Argilla: using the one already running at {config.url} (data: {_shown(config.data_dir)})")
        return None, []
    where = f"data: {_shown(config.data_dir)}" if config.uses_sqlite else f"PostgreSQL, {workers} worker processes"
    print(f"Argilla: starting the embedded server at {config.url} ({where}) ...", flush=True)
    server.start()
    return server, server.accounts_created_on_start()


def _chosen_projects(arguments: argparse.Namespace, argilla: ArgillaClient) -> list[str]:
    """Declare or update a project if the flags say so; the projects to run."""
    asks_to_declare = any(
        value is not None
        for value in (
            arguments.source,
            arguments.split,
            arguments.column_mapping,
            arguments.id_column,
            arguments.categories,
            arguments.annotators,
            arguments.overlap,
            arguments.overlap_annotators,
            arguments.reviewers,
            arguments.until_adjudicated,
            arguments.hub_repo,
        )  # fmt: skip
    )
    if not asks_to_declare and not arguments.project:
        names = declare.declared_projects()
        if not names:
            raise QuickstartError(f"no project is declared in {declare.projects_folder()}: give a --source")
        return names
    if not arguments.project and arguments.source is None:
        raise QuickstartError(
            "which project should change? Name it with --project (declared: "
            f"{', '.join(declare.declared_projects()) or 'none'}), or declare a new one with --source"
        )
    name = arguments.project or declare.name_for_source(arguments.source)
    if not asks_to_declare:
        if name not in declare.declared_projects():
            raise QuickstartError(
                f"there is no project {name!r}; declared: {', '.join(declare.declared_projects()) or 'none'}"
            )
        return [name]
    request = declare.ProjectRequest(
        name=name,
        source=arguments.source,
        split=arguments.split,
        column_mapping=arguments.column_mapping,
        id_column=arguments.id_column,
        categories=arguments.categories,
        annotators=arguments.annotators,
        overlap_share=arguments.overlap,
        overlap_annotators=arguments.overlap_annotators,
        reviewers=arguments.reviewers,
        until_adjudicated=arguments.until_adjudicated,
        hub_repo_id=arguments.hub_repo,
        replace_source=arguments.replace_source,
    )
    declaration = declare.declare(request, _dataset_stamps(argilla, name))
    verb = {"created": "Declared", "updated": "Updated", "unchanged": "Unchanged:"}[declaration.action]
    print(f"{verb} project {name!r} in {_shown(declaration.path)} (source {declaration.source}).")
    for change in declaration.changes:
        print(f"  {change}")
    if declaration.action != "unchanged":
        print("  Every later run, the sensor and the Dagster UI use this file; edit it to change the project.")
    return [name]


def _dataset_stamps(argilla: ArgillaClient, name: str) -> dict[str, str | None]:
    """The source each of the project's Argilla datasets was built from, by annotator (none yet: empty)."""
    from ..logic.source_guard import SOURCE_STAMP

    attributes = declare.read_attributes(name) if name in declare.declared_projects() else {}
    dataset_name = (attributes.get("argilla") or {}).get("dataset") or name
    try:
        datasets = argilla.datasets_named(dataset_name)
    except ArgillaError as error:
        raise QuickstartError(str(error)) from error
    return {shard: dataset.metadata.get(SOURCE_STAMP) for shard, dataset in datasets.items()}


# -- runs -----------------------------------------------------------------------------------


def _plan_and_push(defs: dg.Definitions, name: str, run_config: dict) -> bool:
    instance = dg.DagsterInstance.get()
    print(f"\nProject {name} ({_shown(declare.definition_path(name))}):", flush=True)
    plan = defs.resolve_job_def(f"{name}_plan_assignments").execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False
    )
    if not _report(plan):
        return False
    every_annotator = every_partition_tags(instance, dg.DynamicPartitionsDefinition(name=f"{name}_annotators"))
    if not every_annotator:  # no annotator, no shard to push
        return True
    # Every annotator's shard in one run (each partition still materialized): Dagster's cost per run is paid once.
    push = defs.resolve_job_def(f"{name}_push_shards").execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, tags=every_annotator
    )
    return _report(push)


def _refresh(defs: dg.Definitions, name: str, run_config: dict) -> bool:
    print(f"\nProject {name}: collecting the answers", flush=True)
    refresh = defs.resolve_job_def(f"{name}_refresh_curation").execute_in_process(
        instance=dg.DagsterInstance.get(), run_config=run_config, raise_on_error=False
    )
    return _report(refresh)


def _has_reviews(name: str) -> bool:
    return bool(dg.DagsterInstance.get().get_dynamic_partitions(f"{name}_reviewers"))


def _push_reviews(defs: dg.Definitions, name: str, run_config: dict) -> bool:
    print(f"\nProject {name}: pushing disagreements to the reviewers", flush=True)
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(f"{name}_push_reviews")
    for reviewer in sorted(instance.get_dynamic_partitions(f"{name}_reviewers")):
        if not _report(
            job.execute_in_process(
                instance=instance, partition_key=reviewer, run_config=run_config, raise_on_error=False
            )
        ):
            return False
    return True


def _simulate_reviewers(url: str, credentials: Credentials, name: str) -> None:
    keys = {account.username: account.api_key for account in credentials.annotators}
    review_dataset = f"{_dataset_name(name)}_review"
    for reviewer in sorted(dg.DagsterInstance.get().get_dynamic_partitions(f"{name}_reviewers")):
        if reviewer in keys:
            actions = simulate_reviewer(url, keys[reviewer], reviewer, review_dataset)
            print(simulated_line(name, f"reviewer {reviewer}", actions))


def _report(result: dg.ExecuteInProcessResult) -> bool:
    for line in run_summary(result, dg.DagsterInstance.get()):
        print(line, flush=True)
    if not result.success:
        print(f"\nThe run {result.dagster_run.job_name} failed:\n{failure_message(result)}", file=sys.stderr)
    return result.success


def _simulate(url: str, credentials: Credentials, share: float, seconds_per_record: float, names: list[str]) -> None:
    print(f"\nSIMULATION: annotators answer {share:.0%} of their records (edits are marked {SIMULATION_MARK!r})")
    instance = dg.DagsterInstance.get()
    plan = SimulationPlan(share=share, seconds_per_record=seconds_per_record)
    for name in names:
        dataset_name = _dataset_name(name)
        team = set(instance.get_dynamic_partitions(f"{name}_annotators"))
        accounts = [account for account in credentials.annotators if account.username in team]
        # Side by side, as a team works: the pace table then shows each person's own speed.
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(accounts))) as pool:
            results = [
                pool.submit(simulate_annotator, url, account.api_key, account.username, plan, dataset_name)
                for account in accounts
            ]
            for account, actions in zip(accounts, results):
                print(simulated_line(name, account.username, actions.result()))


def _dataset_name(name: str) -> str:
    attributes = declare.read_attributes(name)
    return (attributes.get("argilla") or {}).get("dataset") or name


# -- webhooks -------------------------------------------------------------------------------


class QuickstartWebhooks:
    """The receiver this command runs, and the webhook it registered in Argilla (disabled again on the way out)."""

    def __init__(self, receiver: WebhookReceiver, webhook_id: str, connection: Connection):
        self.receiver = receiver
        self.webhook_id = webhook_id
        self.connection = connection

    def close(self) -> None:
        try:
            with ArgillaClient(self.connection) as argilla:
                # Else Argilla would post every answer to a closed port until the next start.
                argilla.disable_webhook(self.webhook_id)
        except ArgillaError:
            pass  # Argilla is gone too: nothing will be posted
        self.receiver.stop()


def start_webhooks(argilla_url: str, owner_api_key: str, port: int = WEBHOOK_PORT) -> QuickstartWebhooks | None:
    """A receiver in this process on 127.0.0.1, and Argilla's answer webhook pointed at it; None (polling) if refused."""
    marks = WebhookMarks()
    try:
        receiver = WebhookReceiver([], marks, port=port)
    except OSError:
        receiver = WebhookReceiver([], marks, port=0)  # the usual port is taken: any free one, registered below
    connection = Connection(argilla_url, owner_api_key)
    try:
        with ArgillaClient(connection) as argilla:
            webhook = register_webhook(argilla, receiver.url)
    except ArgillaError as error:
        receiver.server.server_close()
        print(f"Webhooks:    not registered ({error}); the sensor polls Argilla every 30 s instead.")
        return None
    receiver.keys = [secret_key(webhook["secret"])]
    save_secret(webhook["secret"])
    receiver.start()
    print(f"Webhooks:    Argilla posts each answer to {receiver.url}; the sensor hears of it within seconds.")
    return QuickstartWebhooks(receiver, webhook["id"], connection)


# -- what the user sees at the end ----------------------------------------------------------


def _print_where(
    config,
    credentials: Credentials,
    created: list[str],
    names,
    dagster_home: Path,
    dagster_url: str | None,
    argilla_stops: bool = False,
) -> None:
    """Where the UIs and the outputs are; `argilla_stops`: the embedded server this run started stops as it exits."""
    print()
    if dagster_url:
        print(f"Dagster UI:  {dagster_url}   (runs and history: {_shown(dagster_home)})")
    if argilla_stops:
        # A link that answers nothing once the run is over: say so, and how to keep the server up.
        print(f"Argilla UI:  {config.url}   (stops with this run; without --once it stays up, with Dagster's UI)")
    else:
        print(f"Argilla UI:  {config.url}")
    for name in names:
        print(f"Outputs:     {_shown(state.project_output_dir(name))}   (project {name})")
    data_dir = (
        ""
        if config.data_dir == state.argilla_data_dir() and config.uses_sqlite
        else f" --data-dir {_shown(config.data_dir)}"
    )
    show_logins = f"{_shown(Path(sys.executable).parent / 'curation-argilla')}{data_dir} credentials"
    new_logins = [account for account in credentials.annotators if account.username in created]
    if new_logins:
        print(f"New annotator logins (shown once; later: {show_logins}):")
        for account in new_logins:
            print(f"  {account.username:<10} password: {account.password or '(changed in Argilla)'}")
    else:
        print(f"Annotator logins: {show_logins}")


def _serve_dagster(config, credentials, created, names, dagster_home: Path, port: int, verbose: bool = False) -> int:
    """`dagster dev` in the foreground: the UI, plus the daemon that runs the sensors."""
    # Behind a guard: dagster-webserver 1.13 runs GraphQL mutations sent by GET from any page (dagster_web_guard.py).
    command = guarded_dagster_dev_command(["-m", "curation_assets.definitions", "-h", "127.0.0.1", "-p", str(port)])
    log = None if verbose else dagster_home / DAGSTER_LOG_NAME
    dagster = start_logged(command, log)
    _print_where(config, credentials, created, names, dagster_home, dagster_url=f"http://127.0.0.1:{port}")
    print("When an annotator submits in Argilla, the sensor refreshes the statistics and the curated dataset.")
    if log is not None:
        print(f"Dagster's own log (its daemon, sensors and runs): {_shown(log)}   (--verbose shows it here)")
    print("Press Ctrl-C to stop Dagster and Argilla.", flush=True)
    return wait_in_foreground(dagster, log)


# `dagster dev` writes every sensor tick and every event of the runs it launches, at DEBUG level: kept in this file of
# DAGSTER_HOME (appended to, across starts) rather than scrolled through the terminal the links were printed in.
DAGSTER_LOG_NAME = "dagster-dev.log"
LOG_TAIL_LINES = 20


def start_logged(command: list[str], log: Path | None) -> subprocess.Popen:
    """The command in a session of its own (so that stopping it stops its children), its output appended to `log`, or
    to this terminal when `log` is None."""
    if log is None:
        return subprocess.Popen(command, start_new_session=True)
    with open(log, "ab") as output:  # the child keeps its own copy of the descriptor
        output.write(f"\n-- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        output.flush()
        return subprocess.Popen(command, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)


def wait_in_foreground(process: subprocess.Popen, log: Path | None) -> int:
    """Until Ctrl-C, or until the process stops on its own: then its exit code, and the end of its log, which says why
    (its code failing to load, say), since the terminal showed none of it."""
    try:
        while process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        return 0  # after the finally below has stopped the process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except (KeyboardInterrupt, subprocess.TimeoutExpired):
                # A second Ctrl-C, or a shutdown that hangs: stop it now rather than print a traceback.
                os.killpg(process.pid, signal.SIGKILL)
    if log is not None and process.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-LOG_TAIL_LINES:]
        print(f"Dagster stopped (exit code {process.returncode}); the end of {_shown(log)}:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in tail), file=sys.stderr)
    return process.returncode


def _shown(path: Path) -> str:
    """A path as the user typed it from the clone: relative when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
