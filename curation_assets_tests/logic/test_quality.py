"""Quality signals: each flag on a record that has the defect and on one that does not, the rule fixes,
duplicates across the dataset, the per-flag precision and the rule pass."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.argilla_adapter.mapping import ORIGINAL_AGENT, RULE_AGENT, suggestions_for
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.logic import quality
from curation_assets.logic.curation import curate_with_rule_fixes
from curation_assets.logic.quality import (
    FLAGS,
    clean_text,
    compute_quality_signals,
    duplicate_groups,
    flag_counts,
    normalise_whitespace,
    record_flags,
    remove_citation_markers,
    repair_mojibake,
    review_order,
    word_tokens,
)
from curation_assets.logic.shard_sync import quality_metadata
from curation_assets.logic.statistics import NO_FLAG_ROW, compute_statistics

GOOD = {
    "id": "1",
    "category": "closed_qa",
    "instruction": "When did Virgin Australia start operating?",
    "context": "Virgin Australia commenced services on 31 August 2000 as Virgin Blue, with two aircraft on a single route.",
    "response": "It started on 31 August 2000.",
}


def flag_names(**changes) -> list[str]:
    return [flag.name for flag in record_flags({**GOOD, **changes})]


def test_a_clean_record_has_no_flag():
    assert flag_names() == []


def test_citation_markers_are_found_and_removed_but_ipa_in_brackets_stays():
    context = "Born 1743[a] in Virginia.[13] Lamborghini (Italian pronunciation: [autoˈmɔːbili]) rose.[citation needed]"
    assert flag_names(context=context) == ["citation_markers"]
    assert (
        remove_citation_markers(context)
        == "Born 1743 in Virginia. Lamborghini (Italian pronunciation: [autoˈmɔːbili]) rose."
    )
    reason = record_flags({**GOOD, "context": context})[0].reason
    assert "context: 3 ([a] [13] [citation needed])" in reason


def test_whitespace_damage_is_flagged_and_normalised_but_two_spaces_after_a_full_stop_are_a_style():
    assert flag_names(response="It started  on 31 August 2000.") == ["whitespace"]
    assert flag_names(response="It started.  On 31 August 2000.") == []
    assert flag_names(response="It started\u200b on 31 August 2000.") == ["whitespace"]
    assert flag_names(response=" It started. \n\n\n\nOn 31 August 2000.") == ["whitespace"]
    assert (
        normalise_whitespace(" It  started. \n\n\n\nOn\u200b 31\tAugust.  Yes ") == "It started.\n\nOn 31\tAugust.  Yes"
    )


def test_mojibake_is_flagged_and_repaired_while_correct_accents_stay():
    assert flag_names(response="Itâ€™s the cafÃ© on 31 August 2000.") == ["mojibake"]
    assert repair_mojibake("Itâ€™s the cafÃ© in SÃ£o Paulo") == "It’s the café in São Paulo"
    assert repair_mojibake("café, Ångström, naïve, São Paulo") == "café, Ångström, naïve, São Paulo"
    assert flag_names(response="The café opened on 31 August 2000.") == []
    assert flag_names(response="It started on 31 August \ufffd 2000.") == ["mojibake"]


def test_response_copying_the_context_or_the_instruction():
    assert "response_copies_context" in flag_names(response=GOOD["context"] + " More text follows here.")
    assert "response_copies_context" not in flag_names(
        response="Virgin Australia commenced services on 31 August 2000."
    )
    assert flag_names(response="When did Virgin Australia start operating?") == ["response_copies_instruction"]
    assert flag_names(response="Virgin Australia started operating on 31 August 2000.") == []


def test_short_or_empty_response_depends_on_the_category():
    assert flag_names(response="") == ["short_response"]
    assert flag_names(category="open_qa", context="", response="Vermeer") == []
    assert flag_names(category="creative_writing", context="", response="A short poem about rain.") == [
        "short_response"
    ]
    assert "empty" in record_flags({**GOOD, "response": "  "})[-1].reason


def test_context_missing_where_needed_and_present_where_not():
    assert flag_names(context="") == ["missing_context"]
    assert flag_names(category="open_qa") == ["unexpected_context"]
    assert flag_names(category="classification") == [] and flag_names(category="classification", context="") == []


def test_other_language_by_function_words_and_script():
    german = {
        "instruction": "Wann hat Virgin Australia den Betrieb aufgenommen?",
        "response": "Das Unternehmen begann im August 2000 mit zwei Flugzeugen.",
    }
    assert flag_names(**german) == ["other_language"]
    russian = {
        "instruction": "Когда авиакомпания начала работу?",
        "response": "Она начала летать в августе двухтысячного года.",
    }
    assert flag_names(**russian) == ["other_language"]
    spanish = {
        "instruction": "¿Cuándo empezó a volar Virgin Australia?",
        "response": "La aerolínea empezó a volar en agosto de 2000 con dos aviones y no más.",
    }
    assert flag_names(**spanish) == ["other_language"]
    assert "common es words" in record_flags({**GOOD, **spanish})[0].reason
    assert (
        flag_names(
            instruction="Give me the top 5 golf equipment company names.",
            response="Titleist, Taylormade, Callaway, Ping, Cobra",
        )
        == []
    )
    chinese = {
        "instruction": "火车每天早上七点从中央车站出发。",
        "response": "这本书讲述了一个上海家庭的故事。",
    }  # two "words": no spaces
    assert (
        flag_names(**chinese) == ["other_language"]
        and "0% of the letters are Latin" in record_flags({**GOOD, **chinese})[0].reason
    )
    assert flag_names(instruction="What does 東京 mean?", response="Tokyo, the capital of Japan.") == []
    assert record_flags({**GOOD, **german}, language="xx") == []


def test_exact_and_near_duplicates_share_a_group_with_its_size():
    base = "Give me a list of ten fruits that grow in tropical climates and are sold in supermarkets " * 2
    groups = duplicate_groups(
        ["7", "3", "5", "9"],
        [
            base,
            base.upper(),
            base + "mango papaya",
            "Completely different text about the history of the Roman Empire and its roads.",
        ],
    ).set_index("id")
    assert groups.loc[["7", "3", "5"], "duplicate_group"].tolist() == ["3", "3", "3"]
    assert groups.loc["3", "duplicate_group_size"] == 3
    assert groups.loc["7", "duplicate_kind"] == "exact" and groups.loc["5", "duplicate_kind"] == "near"
    assert groups.loc["9", "duplicate_group"] == "" and groups.loc["9", "duplicate_group_size"] == 0


def test_signals_of_the_shipped_excerpt_are_deterministic_and_ordered_by_priority():
    records = load_shipped_dolly_excerpt()
    signals = compute_quality_signals(records)
    assert signals.equals(compute_quality_signals(records))
    counts = flag_counts(signals)
    assert set(FLAGS) <= set(counts) and counts["citation_markers"] == 10 and counts["none"] == 26
    ordered = review_order(records, signals)
    assert ordered["id"].iloc[0] == "10" and sorted(ordered["id"]) == sorted(records["id"])
    assert "single route. It suddenly" in signals.set_index("id").loc["0", "clean_context"]


def test_suggestions_carry_the_rule_fix_or_the_original_and_metadata_lists_the_flags():
    row = {**GOOD, "context": GOOD["context"] + "[3]"}
    signal = compute_quality_signals(pd.DataFrame([row])).iloc[0].to_dict()
    suggestions = {suggestion.question_name: suggestion for suggestion in suggestions_for(row, signal)}
    assert suggestions["new-input"].agent == RULE_AGENT and suggestions["new-input"].value == GOOD["context"]
    assert suggestions["new-input"].score == pytest.approx(0.9)
    assert suggestions["new-response"].agent == ORIGINAL_AGENT and suggestions["new-response"].value == GOOD["response"]
    metadata = quality_metadata(signal)
    assert metadata["flags"] == ["citation_markers"] and metadata["priority"] == 1 and "duplicate_group" not in metadata
    assert quality_metadata(compute_quality_signals(pd.DataFrame([GOOD])).iloc[0].to_dict())["flags"] == ["none"]


def _feedback(rows: list[dict]) -> pd.DataFrame:
    base = {"shard": "ana", "annotator": "ana", "new_instruction": None, "new_input": None, "new_response": None,
            "category": "closed_qa", "updated_at": pd.Timestamp("2025-01-01", tz="UTC")}  # fmt: skip
    return pd.DataFrame([{**base, **row} for row in rows])


def test_flag_precision_counts_changes_and_discards_of_flagged_against_unflagged_records():
    records = pd.DataFrame(
        [
            {
                **GOOD,
                "id": "1",
                "context": GOOD["context"] + "[1]",
                "instruction": "How many aircraft did Virgin Blue start with?",
            },
            {
                **GOOD,
                "id": "2",
                "context": GOOD["context"] + "[2]",
                "instruction": "What was the airline first called?",
            },
            {
                **GOOD,
                "id": "3",
                "context": GOOD["context"] + "[3]",
                "instruction": "On how many routes did it fly at first?",
            },
            {**GOOD, "id": "4", "response": "It started on 1 September 2000."},
            {**GOOD, "id": "5", "response": "It began on 31 August 2000, with two aircraft."},
        ]
    )
    signals = compute_quality_signals(records)
    originals = {row["id"]: row for row in records.to_dict("records")}

    def answer(record_id, status, response=None):
        original = originals[record_id]
        return {"record_id": record_id, "status": status, "instruction": original["instruction"], "context": original["context"],
                "response": original["response"], "new_instruction": original["instruction"], "new_input": original["context"],
                "new_response": response or original["response"]}  # fmt: skip

    feedback = _feedback(
        [
            answer("1", "submitted", "Changed."),
            answer("2", "discarded"),
            answer("3", "submitted"),
            answer("4", "submitted"),
            answer("5", "pending"),
        ]
    )
    table = compute_statistics(feedback, signals).flag_precision.set_index("flag")
    assert table.loc["citation_markers"].to_dict() == {
        "reviewed": 3,
        "changed": 1,
        "discarded": 1,
        "unchanged": 1,
        "precision": 0.667,
    }
    assert table.loc[NO_FLAG_ROW, "reviewed"] == 1 and table.loc[NO_FLAG_ROW, "precision"] == 0.0
    assert table.loc["duplicate", "reviewed"] == 0 and pd.isna(table.loc["duplicate", "precision"])


def test_rule_pass_is_off_by_default_and_touches_only_records_nobody_answered():
    records = pd.DataFrame(
        [{**GOOD, "id": str(index), "context": GOOD["context"] + f"[{index}]"} for index in range(1, 5)]
    )
    signals = compute_quality_signals(records)
    rows = []
    for record, status in zip(records.to_dict("records"), ["submitted", "draft", "pending", "discarded"]):
        rows.append({"record_id": record["id"], "status": status, "instruction": record["instruction"], "context": record["context"],
                     "response": record["response"], "new_instruction": record["instruction"], "new_input": record["context"],
                     "new_response": record["response"]})  # fmt: skip
    feedback = _feedback(rows)
    assert curate_with_rule_fixes(feedback, signals, apply_rule_fixes=False)["id"].tolist() == ["1"]
    curated = curate_with_rule_fixes(feedback, signals, apply_rule_fixes=True).set_index("id")
    assert curated["provenance"].to_dict() == {"1": "original", "3": "rule"}
    assert curated.loc["3", ["instruction", "context", "response"]].tolist() == [
        GOOD["instruction"],
        GOOD["context"],
        GOOD["response"],
    ]
    assert signals.set_index("id").loc["3", ["clean_instruction", "clean_response"]].isna().all(), (
        "only what a rule changed is kept"
    )


def test_rule_pass_takes_each_untouched_record_once_from_its_first_row():
    """A record in two annotators' datasets: one pending row is not enough if the other annotator touched it."""
    records = pd.DataFrame(
        [{**GOOD, "id": str(index), "context": GOOD["context"] + f"[{index}]"} for index in range(1, 4)]
        + [{**GOOD, "id": "4"}]
    )
    signals = compute_quality_signals(records)
    row = {column: GOOD[column] for column in ("instruction", "response")}
    feedback = _feedback([
        {**row, "record_id": "3", "status": "pending", "context": "first row", "annotator": "ana", "shard": "ana"},
        {**row, "record_id": "1", "status": "pending", "context": "c", "annotator": "ana", "shard": "ana"},
        {**row, "record_id": "1", "status": "draft", "context": "c", "annotator": "bo", "shard": "bo"},
        {**row, "record_id": "3", "status": "pending", "context": "second row", "annotator": "bo", "shard": "bo"},
        {**row, "record_id": "2", "status": "pending", "context": "c", "annotator": "bo", "shard": "bo"},
        {**row, "record_id": "4", "status": "pending", "context": "c", "annotator": "bo", "shard": "bo"},
    ])  # fmt: skip
    fixed = curate_with_rule_fixes(feedback, signals, apply_rule_fixes=True)
    assert fixed["id"].tolist() == ["2", "3"], "1 was touched (a draft), 4 needs no fix"
    assert fixed["provenance"].tolist() == ["rule", "rule"] and fixed["annotator"].tolist() == ["", ""]
    cleaned_context = signals.set_index("id").loc["3", "clean_context"]
    assert fixed.set_index("id").loc["3", "context"] == cleaned_context == GOOD["context"]


def test_rule_pass_before_anyone_submitted():
    records = pd.DataFrame(
        [{**GOOD, "id": "1", "context": GOOD["context"] + "[1]"}, {**GOOD, "id": "2", "instruction": "Who?"}]
    )
    signals = compute_quality_signals(records)
    feedback = _feedback([{"record_id": row["id"], "status": "pending", "instruction": row["instruction"], "context": row["context"],
                           "response": row["response"]} for row in records.to_dict("records")])  # fmt: skip
    nothing = curate_with_rule_fixes(feedback, signals, apply_rule_fixes=False)
    assert nothing.empty and all(pd.api.types.is_object_dtype(dtype) for dtype in nothing.dtypes), (
        "text columns stay text, not the floats pandas gives an empty frame"
    )
    fixed = curate_with_rule_fixes(feedback, signals, apply_rule_fixes=True)
    assert fixed[["id", "provenance"]].values.tolist() == [["1", "rule"]]


DAMAGED_TEXT = st.lists(
    st.sampled_from(list("ab .,\n\t[]1c\u200b\u00e9Ã©â€™") + ["[12]", "[a]", "  ", "word"]), max_size=30
).map("".join)
# Flags judged on a record's words, which cleaning can change (removing "[12]" removes the word "12").
WORD_FLAGS = {"short_response", "response_copies_context", "response_copies_instruction", "other_language"}


@settings(max_examples=200, deadline=None)
@given(DAMAGED_TEXT)
def test_cleaning_is_idempotent_and_clears_the_flags_of_what_it_fixes(text):
    once = clean_text(text)
    assert clean_text(once) == once
    after = {flag.name for flag in record_flags({**GOOD, "response": once})}
    assert not ({"citation_markers", "whitespace", "mojibake"} & after)


@settings(max_examples=300, deadline=None)
@given(DAMAGED_TEXT)
def test_cleaning_adds_a_flag_only_by_changing_the_words(text):
    once = clean_text(text)
    before = {flag.name for flag in record_flags({**GOOD, "response": text})}
    added = {flag.name for flag in record_flags({**GOOD, "response": once})} - before
    if word_tokens(once) == word_tokens(text):
        assert not added
    else:
        assert added <= WORD_FLAGS


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="abcde fgh", min_size=0, max_size=40), min_size=1, max_size=12))
def test_duplicate_groups_are_consistent(texts):
    ids = [str(index) for index in range(len(texts))]
    groups = duplicate_groups(ids, texts)
    sizes = groups[groups["duplicate_group"] != ""].groupby("duplicate_group").size()
    for group, size in sizes.items():
        assert (groups.loc[groups["duplicate_group"] == group, "duplicate_group_size"] == size).all()
        assert group == min(groups.loc[groups["duplicate_group"] == group, "id"], key=int)
    normalised = [" ".join(text.split()) for text in texts]
    for left in range(len(texts)):
        for right in range(left + 1, len(texts)):
            if normalised[left] and normalised[left] == normalised[right]:
                assert groups["duplicate_group"][left] == groups["duplicate_group"][right] != ""


# Words of one to 40 characters, ASCII and not (a non-word "’", a Kelvin sign that lower-cases to ASCII "k", a final
# sigma), so that packed words of up to 16 bytes and longer words both occur, at the ends of texts too.
WORDY_TEXT = st.lists(
    st.sampled_from(["a", "ab", "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq", "x" * 40])
    | st.sampled_from([" ", "  ", "\n", "’", "é", "\u212a", "ΟΔΟΣ", "日本語", "_", "9", ".", "\t"]),
    max_size=25,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDY_TEXT, max_size=9))
def test_words_of_many_texts_are_each_texts_word_tokens_hashed(texts):
    """The chunk's words, found in numpy without a Python object per word, are word_tokens of each text in order, with
    their hashes and function-word bits; the digests are those of the joined tokens."""
    words = quality._Words.of(texts)
    tokens = [word_tokens(text) for text in texts]
    assert words.counts.tolist() == [len(found) for found in tokens]
    flat = [word for found in tokens for word in found]
    assert words.hashes.tolist() == [quality.word_hash(word) for word in flat]
    assert words.stopword_bits.tolist() == [quality._STOPWORD_BITS.get(word, 0) for word in flat]
    assert words.starts.tolist() == [sum(map(len, tokens[:index])) for index in range(len(texts))]
    pairs = len(texts) // 2
    assert words.digests(
        np.arange(0, 2 * pairs, 2), words.counts[0 : 2 * pairs : 2] + words.counts[1 : 2 * pairs : 2]
    ) == [quality.duplicate_text_digest(tokens[2 * pair] + tokens[2 * pair + 1]) for pair in range(pairs)]


def test_thousands_of_copies_of_one_record_form_one_group_with_its_near_copies():
    words = "the river delta floods each spring and farmers plant rice on the silt it leaves behind".split()
    original = " ".join(words * 4)
    texts, expected_kind = [], []
    for index in range(3000):  # exact copies (whitespace and case differ: the words are the same)
        texts.append(original.upper() if index % 2 else original.replace(" ", "  "))
        expected_kind.append("exact")
    for index in range(500):  # near copies: one word replaced, a different one each time
        changed = list(words * 4)
        changed[index % len(changed)] = f"word{index}"
        texts.append(" ".join(changed))
        expected_kind.append("near")
    for index in range(500):  # distinct records
        texts.append(f"record {index} asks about topic {index * 7} in its own words, number {index}")
        expected_kind.append("")
    ids = [str(9000 - index) for index in range(len(texts))]

    groups = duplicate_groups(ids, texts)

    copies = groups.iloc[:3500]
    assert (copies["duplicate_group"] == min(ids[:3500], key=int)).all()
    assert (copies["duplicate_group_size"] == 3500).all()
    assert groups["duplicate_kind"].tolist() == expected_kind
    assert (groups["duplicate_similarity"].iloc[:3000] == 1.0).all()
    assert groups["duplicate_similarity"].iloc[3000:3500].between(0.6, 1.0, inclusive="left").all()
    assert (groups["duplicate_group"].iloc[3500:] == "").all() and (
        groups["duplicate_group_size"].iloc[3500:] == 0
    ).all()


def test_worker_processes_give_the_same_signals_as_one_process(monkeypatch):
    monkeypatch.setattr(quality, "CHUNK_RECORDS", 500)  # several chunks, so both workers get some
    excerpt = load_shipped_dolly_excerpt().to_dict("records")
    records = pd.DataFrame(
        [
            {**excerpt[index % len(excerpt)], "id": str(index), "response": excerpt[(index * 7) % len(excerpt)]["response"]
             + (f" variant {index}" if index % 3 else "")}
            for index in range(1800)
        ]
    )  # fmt: skip
    one = compute_quality_signals(records, workers=1)
    assert one["duplicate_group_size"].gt(0).sum() > 100 and one["fixable"].any(), "the sample has duplicates and fixes"
    assert one.equals(compute_quality_signals(records, workers=2))
