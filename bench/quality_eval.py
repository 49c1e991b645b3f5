"""How good and how cheap are the quality signals?

    python bench/quality_eval.py [--records 15000] [--skip-pipeline]

1. Precision and recall of each flag on the shipped real excerpt, against the labels in
   bench/quality_labels_dolly_excerpt.json (labelled by reading the 37 records).
2. The same on generated Dolly-shaped records (words drawn from the real excerpt, lengths and
   category mix too) with one injected defect per defective record: 4% of the records per defect.
3. Time: `quality_signals` on those records, against the rest of the pipeline materialized in-process
   on the same records with a fresh embedded Argilla and three annotators (unless --skip-pipeline).

Figures are for comparing runs side by side on one machine, not absolute claims.
"""

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.logic.quality import (
    CATEGORIES_NEEDING_CONTEXT,
    CATEGORIES_WITHOUT_CONTEXT,
    FLAGS,
    MIN_RESPONSE_WORDS,
    clean_text,
    compute_quality_signals,
)

LABELS_PATH = Path(__file__).with_name("quality_labels_dolly_excerpt.json")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the shared harness in curation_assets_tests
RESULTS_DIR = Path(__file__).with_name("results")
DEFECT_RATE = 0.04
OTHER_LANGUAGE_WORDS = {
    "de": "der die das und ist nicht ein eine mit von zu auf für sich auch noch wie wir sie aber nach bei oder "
    "Haus Stadt Jahr Zeit Mensch Wasser Arbeit Schule Wetter gestern morgen immer schnell gross klein".split(),
    "es": "el la los las y es no un una con de a en por para que se también como pero después cuando "
    "casa ciudad año tiempo persona agua trabajo escuela ayer mañana siempre rápido grande pequeño".split(),
    "ru": "и в не на я что он с как а это по но они к у же вы за бы год дом город время человек вода работа".split(),
}
MOJIBAKE_WORDS = ["café", "naïve", "it’s", "“quoted”", "résumé", "São", "déjà"]


def precision_recall(signals: pd.DataFrame, truth: dict[str, set[str]]) -> pd.DataFrame:
    flagged_by = {
        flag: set(signals.loc[signals["flags"].map(lambda flags, f=flag: f in flags), "id"]) for flag in FLAGS
    }
    rows = []
    for flag in FLAGS:
        expected, found = truth.get(flag, set()), flagged_by[flag]
        hits = len(expected & found)
        rows.append(
            {
                "flag": flag,
                "labelled": len(expected),
                "flagged": len(found),
                "true_pos": hits,
                "false_pos": len(found - expected),
                "false_neg": len(expected - found),
                "precision": f"{hits / len(found):.2f}" if found else "n/a",
                "recall": f"{hits / len(expected):.2f}" if expected else "n/a",
            }
        )
    return pd.DataFrame(rows)


# -- generated data -----------------------------------------------------------------------------------


def generated_records(count: int, seed: int = 0) -> tuple[pd.DataFrame, dict[str, set[str]], dict[str, float]]:
    """Clean Dolly-shaped records with defects injected into disjoint random subsets; the truth per flag;
    and, for each injected near duplicate, the share of words changed."""
    randomness = random.Random(seed)
    sample = load_shipped_dolly_excerpt().to_dict("records")
    vocabulary = [
        word
        for row in sample
        for word in clean_text(f"{row['instruction']} {row['context']} {row['response']}").split()
        if word.isascii() and "[" not in word and "]" not in word
    ]

    def text(length: int) -> str:
        return " ".join(randomness.choice(vocabulary) for _ in range(max(1, length)))

    rows = []
    for index in range(count):
        model = randomness.choice(sample)
        rows.append(
            {
                "id": str(index),
                "category": model["category"],
                "instruction": text(max(4, len(model["instruction"].split()))),
                "context": text(len(model["context"].split())) if model["context"] else "",
                "response": text(max(MIN_RESPONSE_WORDS[model["category"]], len(model["response"].split()))),
            }
        )

    order = list(range(count))
    randomness.shuffle(order)
    per_defect = int(count * DEFECT_RATE)
    chosen = {flag: order[position * per_defect : (position + 1) * per_defect] for position, flag in enumerate(FLAGS)}
    clean_pool = order[len(FLAGS) * per_defect :]
    truth: dict[str, set[str]] = {flag: set() for flag in FLAGS}
    edit_rates: dict[str, float] = {}

    def mark(flag: str, index: int) -> None:
        truth[flag].add(str(index))

    for index in chosen["citation_markers"]:
        field = "context" if rows[index]["context"] else "response"
        tokens = rows[index][field].split()
        for _ in range(randomness.randint(1, 3)):
            position = randomness.randrange(len(tokens))
            tokens[position] += randomness.choice(["[1]", "[12]", "[a]", "[citation needed]", "[note 3]"])
        rows[index][field] = " ".join(tokens)
        mark("citation_markers", index)
    for index in chosen["whitespace"]:
        field = randomness.choice(["instruction", "response"])
        tokens = rows[index][field].split()
        position = randomness.randrange(1, len(tokens)) if len(tokens) > 1 else 1
        damage = randomness.choice(["  ", " \n", "\u200b ", "   "])
        rows[index][field] = " ".join(tokens[:position]) + damage + " ".join(tokens[position:])
        if damage == "  " and rows[index][field][rows[index][field].index("  ") - 1] in ".!?:;":
            rows[index][field] = rows[index][field].replace("  ", "\u200b ", 1)  # two spaces after a stop are a style
        mark("whitespace", index)
    for index in chosen["mojibake"]:
        word = randomness.choice(MOJIBAKE_WORDS)
        damaged = word.encode("utf-8").decode("cp1252", errors="replace")
        rows[index]["response"] = f"{rows[index]['response']} {damaged}"
        mark("mojibake", index)
    for index in chosen["response_copies_context"]:
        if not rows[index]["context"]:
            rows[index]["context"] = text(60)
            if rows[index]["category"] in CATEGORIES_WITHOUT_CONTEXT:
                mark("unexpected_context", index)
        rows[index]["response"] = rows[index]["context"] + randomness.choice(["", " " + text(5)])
        mark("response_copies_context", index)
    for index in chosen["response_copies_instruction"]:
        rows[index]["response"] = rows[index]["instruction"].rstrip("?")
        mark("response_copies_instruction", index)
        if len(rows[index]["response"].split()) < MIN_RESPONSE_WORDS[rows[index]["category"]]:
            mark("short_response", index)
    for index in chosen["short_response"]:
        minimum = MIN_RESPONSE_WORDS[rows[index]["category"]]
        rows[index]["response"] = (
            "" if minimum == 1 or randomness.random() < 0.3 else text(randomness.randint(1, minimum - 1))
        )
        mark("short_response", index)
    for index in chosen["missing_context"]:
        rows[index]["category"] = randomness.choice(sorted(CATEGORIES_NEEDING_CONTEXT))
        rows[index]["context"] = ""
        rows[index]["response"] = text(randomness.randint(MIN_RESPONSE_WORDS[rows[index]["category"]], 60))
        mark("missing_context", index)
    for index in chosen["unexpected_context"]:
        rows[index]["category"] = randomness.choice(sorted(CATEGORIES_WITHOUT_CONTEXT))
        rows[index]["context"] = text(randomness.randint(20, 80))
        rows[index]["response"] = text(randomness.randint(MIN_RESPONSE_WORDS[rows[index]["category"]], 60))
        mark("unexpected_context", index)
    for index in chosen["duplicate"]:
        original = clean_pool.pop()
        rows[index]["category"] = rows[original]["category"]
        rows[index]["context"] = rows[original]["context"]
        rows[index]["instruction"] = rows[original]["instruction"]
        tokens = rows[original]["response"].split()
        rate = randomness.choice([0.0, 0.0, 0.05, 0.1, 0.2, 0.3])
        for position in randomness.sample(range(len(tokens)), int(len(tokens) * rate)):
            tokens[position] = randomness.choice(vocabulary)
        rows[index]["response"] = " ".join(tokens)
        edit_rates[str(index)] = rate
        mark("duplicate", index)
        mark("duplicate", original)
    for index in chosen["other_language"]:
        words = OTHER_LANGUAGE_WORDS[randomness.choice(sorted(OTHER_LANGUAGE_WORDS))]
        rows[index]["instruction"] = " ".join(randomness.choice(words) for _ in range(randomness.randint(5, 15))) + "?"
        rows[index]["response"] = " ".join(randomness.choice(words) for _ in range(randomness.randint(5, 60))) + "."
        mark("other_language", index)
    return pd.DataFrame(rows), truth, edit_rates


# -- timing -------------------------------------------------------------------------------------------


def time_signals(records: pd.DataFrame, repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        compute_quality_signals(records)
        timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2]


def pipeline_step_seconds(records: pd.DataFrame) -> dict[str, float]:
    """Each asset's step time (the partitioned pushes summed) in one in-process run of a project declaring the records."""
    import dagster as dg

    from curation_assets.dagster_storage import INSTANCE_OVERRIDES
    from curation_assets.local_argilla.process import start_embedded_argilla
    from curation_assets_tests.harness import PLAN, REFRESH, ProjectOnServer

    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "generated.jsonl"
        records.to_json(source, orient="records", lines=True, force_ascii=False)
        (folder / "dagster").mkdir()
        server = start_embedded_argilla(folder / "argilla", annotator_names=["ana", "bruno", "chen"])
        try:
            with dg.instance_for_test(temp_dir=str(folder / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
                pipeline = ProjectOnServer(server, instance, folder, name="quality_eval", source={"file": str(source)})

                def add_step_times(result: dg.ExecuteInProcessResult) -> None:
                    starts = {}
                    for entry in instance.all_logs(result.run_id):
                        if entry.dagster_event is None:
                            continue
                        if entry.dagster_event.event_type_value == "STEP_START":
                            starts[entry.step_key] = entry.timestamp
                        elif entry.dagster_event.event_type_value == "STEP_SUCCESS":
                            name = entry.step_key.split("[")[0].split("__")[-1]
                            seconds[name] = seconds.get(name, 0.0) + entry.timestamp - starts[entry.step_key]

                add_step_times(pipeline.materialize(PLAN))
                for result in pipeline.push_all_shards().values():
                    add_step_times(result)
                add_step_times(pipeline.materialize(REFRESH))
        finally:
            server.stop()
    return seconds


def logging_with_and_without_signals(records: pd.DataFrame, signals: pd.DataFrame) -> dict[str, float]:
    """Seconds to log the same records into datasets of one fresh server, as before the quality signals
    (originals as suggestions, no metadata) and as now (notes field, metadata, rule suggestions, priority
    order). Runs in the order without, with, with, without and sums per variant, so that a drift in the
    machine's load affects both alike."""
    import argilla as rg

    from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
    from curation_assets.argilla_adapter.mapping import to_argilla_records
    from curation_assets.local_argilla.process import start_embedded_argilla
    from curation_assets.logic.quality import review_order

    runs: dict[str, list[float]] = {"without signals": [], "with signals": []}
    with tempfile.TemporaryDirectory() as folder:
        server = start_embedded_argilla(Path(folder), annotator_names=["ana"])
        try:
            client = rg.Argilla(api_url=server.url, api_key=server.owner_api_key)
            workspace = rg.Workspace(name="ana", client=client).create()
            for position, variant in enumerate(
                ["without signals", "with signals", "with signals", "without signals"] * 2
            ):
                settings = curation_dataset_settings()
                if variant == "without signals":
                    settings = rg.Settings(guidelines=settings.guidelines, fields=[f for f in settings.fields if f.name != "quality_notes"],
                                           questions=list(settings.questions))  # fmt: skip
                dataset = rg.Dataset(
                    name=f"run_{position}", workspace=workspace, settings=settings, client=client
                ).create()
                started = time.perf_counter()
                if variant == "without signals":
                    argilla_records = to_argilla_records(records)
                else:
                    argilla_records = to_argilla_records(review_order(records, signals), signals)
                dataset.records.log(argilla_records, batch_size=500)
                runs[variant].append(time.perf_counter() - started)
        finally:
            server.stop()
    return {variant: statistics.median(values) for variant, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument(
        "--skip-pipeline", action="store_true", help="time the signals only, not the rest of the pipeline"
    )
    parser.add_argument("--logging-records", type=int, default=2000,
                        help="log this many records with and without the signals' metadata and suggestions (0: skip)")  # fmt: skip
    arguments = parser.parse_args()
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {os.cpu_count()} cores, {memory_gib:.0f} GiB")

    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"quality-eval-{timestamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"timestamp": timestamp, "command": " ".join(["python bench/quality_eval.py", *sys.argv[1:]]),
              "machine": {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "load_average": list(os.getloadavg())}}  # fmt: skip

    labels = json.loads(LABELS_PATH.read_text())["labels"]
    excerpt = compute_quality_signals(load_shipped_dolly_excerpt())
    print("\n## Shipped real excerpt (37 records, hand-labelled)\n")
    report["excerpt"] = precision_recall(excerpt, {flag: set(ids) for flag, ids in labels.items()})
    print(report["excerpt"].to_markdown(index=False))

    records, truth, edit_rates = generated_records(arguments.records)
    signals = compute_quality_signals(records)
    print(f"\n## Generated records ({len(records):,}, {DEFECT_RATE:.0%} per injected defect)\n")
    report["generated"] = precision_recall(signals, truth)
    print(report["generated"].to_markdown(index=False))
    duplicate_ids = set(signals.loc[signals["flags"].map(lambda flags: "duplicate" in flags), "id"])
    by_rate = (
        pd.Series(edit_rates)
        .groupby(lambda record_id: edit_rates[record_id])
        .apply(lambda group: sum(record_id in duplicate_ids for record_id in group.index) / len(group))
    )
    print("\nDuplicate recall by share of response words changed: "
          + ", ".join(f"{rate:.0%}: {recall:.2f}" for rate, recall in by_rate.items()))  # fmt: skip

    signal_seconds = time_signals(records)
    print(f"\n## Time ({len(records):,} records)\n")
    print(f"compute_quality_signals: {signal_seconds:.2f} s (median of 3)")
    report.update(excerpt=report["excerpt"].to_dict("records"), generated=report["generated"].to_dict("records"),
                  duplicate_recall_by_edit_rate={f"{rate:.0%}": round(recall, 3) for rate, recall in by_rate.items()},
                  compute_quality_signals_seconds=round(signal_seconds, 3), records=len(records))  # fmt: skip
    out.write_text(json.dumps(report, indent=1))
    print(f"written: {out}")
    if arguments.logging_records:
        subset = records.head(arguments.logging_records)
        logged = logging_with_and_without_signals(subset, compute_quality_signals(subset))
        timings = ", ".join(f"{variant} {value:.1f} s" for variant, value in logged.items())
        change = logged["with signals"] / logged["without signals"] - 1
        print(
            f"\nlogging {len(subset):,} records to Argilla, median of 4 runs each: {timings} ({change:+.1%} with signals)"
        )
    if arguments.skip_pipeline:
        return
    steps = pipeline_step_seconds(records)
    rest = sum(value for name, value in steps.items() if name != "quality_signals")
    print("\n| asset | seconds |\n| --- | ---: |")
    for name, value in steps.items():
        print(f"| {name} | {value:.1f} |")
    print(f"\nquality_signals step {steps['quality_signals']:.1f} s vs the rest of the pipeline {rest:.1f} s: "
          f"{steps['quality_signals'] / rest:.1%} overhead")  # fmt: skip


if __name__ == "__main__":
    main()
