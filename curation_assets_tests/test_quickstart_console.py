"""The quickstart's line per step: counts a person reads, breakdowns as words, none shown when empty."""

from curation_assets.quickstart.console import step_line


def test_a_breakdown_reads_as_words_and_an_empty_one_is_left_out():
    published = step_line("curated_dolly", None, {"records": 7, "provenance": {"original": 4, "human": 3}})
    assert published.split(maxsplit=1)[1] == "7 records published (original 4, human 3)"
    nothing = step_line("review_queue", None, {"disagreements": 0, "by_reviewer": {}})
    assert nothing.split(maxsplit=1)[1] == "0 disagreements"
    reviews = step_line("collected_reviews", None, {"reviews": 2, "by_verdict": {"accept": 2}})
    assert reviews.split(maxsplit=1)[1] == "2 reviews (accept 2)"
