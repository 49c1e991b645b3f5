"""The quickstart's line per step: counts a person reads, breakdowns as words, none shown when empty."""

from collections import Counter

from curation_assets.quickstart.console import simulated_line, step_line


def test_a_breakdown_reads_as_words_and_an_empty_one_is_left_out():
    published = step_line("curated_dolly", None, {"records": 7, "provenance": {"original": 4, "human": 3}})
    assert published.split(maxsplit=1)[1] == "7 records published (original 4, human 3)"
    nothing = step_line("review_queue", None, {"disagreements": 0, "by_reviewer": {}})
    assert nothing.split(maxsplit=1)[1] == "0 disagreements"
    reviews = step_line("collected_reviews", None, {"reviews": 2, "by_verdict": {"accept": 2}})
    assert reviews.split(maxsplit=1)[1] == "2 reviews (accept 2)"


def test_a_simulated_annotators_actions_read_as_words_in_a_fixed_order():
    actions = Counter({"draft": 1, "discard": 2, "submit_edited": 3, "submit_unchanged": 4})
    assert simulated_line("dolly_excerpt", "ana", actions) == (
        "  dolly_excerpt: simulated ana: submitted unchanged 4, submitted edited 3, discarded 2, drafts 1"
    )
    assert simulated_line("p", "reviewer rita", Counter({"left out": 1, "accepted": 2})) == (
        "  p: simulated reviewer rita: accepted 2, left out 1"
    )
    assert simulated_line("p", "bruno", Counter()) == "  p: simulated bruno: nothing left to answer"
    assert simulated_line("p", "chen", Counter({"discard": 0, "draft": 1})) == "  p: simulated chen: drafts 1"
