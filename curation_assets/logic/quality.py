"""Quality signals: deterministic, explainable flags per record, and the rule fixes that are safe to propose.

Every flag has a name (a filterable Argilla metadata term) and a reason a person can check by
reading the record. Nothing here is learned or random: the same records give the same signals.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

# The flags, in the order they are reported, with the weight each adds to a record's review priority.
FLAG_WEIGHTS = {
    "citation_markers": 1,
    "whitespace": 1,
    "mojibake": 2,
    "response_copies_context": 3,
    "response_copies_instruction": 3,
    "short_response": 2,
    "missing_context": 2,
    "unexpected_context": 1,
    "duplicate": 2,
    "other_language": 2,
}
FLAGS = tuple(FLAG_WEIGHTS)
NO_FLAG = "none"  # the metadata term of a record nobody needs to look at first
# Fixes a rule can make without changing what a text says (the automatic pass applies only these).
SAFE_FIX_FLAGS = ("citation_markers", "whitespace", "mojibake")
TEXT_COLUMNS = ("instruction", "context", "response")

# Dolly's task definitions: these categories are answered from a reference passage ...
CATEGORIES_NEEDING_CONTEXT = frozenset({"closed_qa", "information_extraction", "summarization"})
# ... these from general knowledge. classification and creative_writing may come either way.
CATEGORIES_WITHOUT_CONTEXT = frozenset({"open_qa", "general_qa", "brainstorming"})
# Fewest words a useful response has, per category (a one-word answer is fine for a factual question).
MIN_RESPONSE_WORDS = {
    "open_qa": 1,
    "closed_qa": 1,
    "classification": 1,
    "information_extraction": 1,
    "general_qa": 5,
    "brainstorming": 5,
    "summarization": 10,
    "creative_writing": 20,
}

# Wikipedia reference marks: [12], [a], [citation needed], [note 3], [nb 1]. Not IPA in brackets.
CITATION_MARKER = re.compile(r"[ \t]?\[(?:\d{1,3}|[a-z]|citation needed|note \d{1,3}|nb \d{1,3})\]", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Two spaces after a full stop is a typing style; elsewhere, or three and more, it is damage.
_SPACE_RUN = re.compile(r" {3,}|(?<![.!?:;\s]) {2,}")
_TRAILING_LINE_SPACE = re.compile(r"[ ]+\n")
_NEWLINE_RUN = re.compile(r"\n{3,}")
# UTF-8 read as Windows-1252/Latin-1: "Ã©", "â€™", "Â ". A run of such characters is repaired only if it
# round-trips to valid UTF-8, so correct accented text ("café", "Ångström") is never touched.
_MOJIBAKE_RUN = re.compile(r"[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]+")
_WORD = re.compile(r"\w+", re.UNICODE)

# Language: share of common function words, and share of Latin letters. Enough to tell English from
# other languages on a sentence or more, with no model to download.
ENGLISH_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i me my not no do does did have has had "
    "will would can could should may might what which who whom when where why how all any some more most than "
    "then so such also into about over after before between through during up down out only very just".split()
)
LANGUAGE_STOPWORDS = {"en": ENGLISH_STOPWORDS}
MIN_WORDS_FOR_LANGUAGE = 8
MIN_STOPWORD_SHARE = 0.08
MIN_LATIN_SHARE = 0.6

# Near duplicates: MinHash over word 3-shingles of instruction + response, LSH banding, then the exact
# Jaccard similarity of the candidates decides.
SHINGLE_WORDS = 3
MINHASH_PERMUTATIONS = 64
LSH_BANDS = 16  # 4 rows per band: pairs above ~0.5 Jaccard become candidates
NEAR_DUPLICATE_JACCARD = 0.7
COPY_COVERAGE = 0.8  # share of the source's shingles found in the response
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)


@dataclass(frozen=True)
class Flag:
    name: str
    reason: str


# -- text rules -------------------------------------------------------------------------------------


def citation_markers(text: str) -> list[str]:
    return [match.strip() for match in CITATION_MARKER.findall(text or "")]


def remove_citation_markers(text: str) -> str:
    return CITATION_MARKER.sub("", text or "")


def normalise_whitespace(text: str) -> str:
    """Invisible and control characters out, no runs of spaces or blank lines, no spaces at line ends, stripped.

    Typographic spaces (no-break, thin) are real characters of the text and stay.
    """
    text = _INVISIBLE.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    text = _SPACE_RUN.sub(" ", text)
    text = _TRAILING_LINE_SPACE.sub("\n", text)
    text = _NEWLINE_RUN.sub("\n\n", text)
    return text.strip()


def repair_mojibake(text: str) -> str:
    """Decode runs of UTF-8-read-as-cp1252 back; runs that do not round-trip stay as they are."""

    def repair(match: re.Match) -> str:
        run = match.group(0)
        for encoding in ("cp1252", "latin-1"):
            try:
                return run.encode(encoding).decode("utf-8")
            except UnicodeError:
                continue
        return run

    return _MOJIBAKE_RUN.sub(repair, text or "")


def mojibake_runs(text: str) -> list[str]:
    """Damaged runs that a repair would change, and U+FFFD replacement characters (lost for good)."""
    runs = [match.group(0) for match in _MOJIBAKE_RUN.finditer(text or "") if repair_mojibake(match.group(0)) != match.group(0)]
    return runs + ["\ufffd"] * (text or "").count("\ufffd")


def clean_text(text: str) -> str:
    """The safe rule fixes together: encoding repaired, citation markers removed, whitespace normalised.

    Repeated until nothing changes, since one fix can expose another (a marker inside a damaged
    character, a zero-width space inside a marker). Every change shortens the text, so this ends.
    """
    text = text or ""
    while True:
        cleaned = normalise_whitespace(remove_citation_markers(repair_mojibake(text)))
        if cleaned == text:
            return cleaned
        text = cleaned


def words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower())


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    tokens = words(text)
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[index : index + size]) for index in range(len(tokens) - size + 1)}


def coverage(source: str, target: str) -> float:
    """Share of the source's word 3-shingles that appear in the target (1.0: the target contains it all)."""
    source_shingles = shingles(source)
    if not source_shingles:
        return 0.0
    return len(source_shingles & shingles(target)) / len(source_shingles)


def language_share(text: str, stopwords: frozenset[str] = ENGLISH_STOPWORDS) -> tuple[float, float, int]:
    """(share of words that are the language's function words, share of letters that are Latin, word count)."""
    tokens = words(text)
    letters = [character for character in text or "" if character.isalpha()]
    latin = sum(1 for character in letters if "LATIN" in unicodedata.name(character, ""))
    stopword_share = sum(1 for token in tokens if token in stopwords) / len(tokens) if tokens else 0.0
    return stopword_share, (latin / len(letters) if letters else 1.0), len(tokens)


# -- per-record flags -------------------------------------------------------------------------------


def record_flags(record: dict, language: str = "en") -> list[Flag]:
    """The flags of one record that need no other record (duplicates are found across the dataset)."""
    instruction, context, response = (record.get(column) or "" for column in TEXT_COLUMNS)
    category = record.get("category") or ""
    flags = []

    markers = {column: citation_markers(record.get(column) or "") for column in TEXT_COLUMNS}
    found = {column: found for column, found in markers.items() if found}
    if found:
        where = "; ".join(f"{column}: {len(items)} ({' '.join(items[:4])}{' ...' if len(items) > 4 else ''})" for column, items in found.items())
        flags.append(Flag("citation_markers", f"Wikipedia citation markers, remove them: {where}"))

    damaged = [column for column in TEXT_COLUMNS if normalise_whitespace(record.get(column) or "") != (record.get(column) or "")]
    if damaged:
        flags.append(Flag("whitespace", f"stray whitespace or invisible characters in {', '.join(damaged)}"))

    broken = {column: mojibake_runs(record.get(column) or "") for column in TEXT_COLUMNS}
    broken = {column: runs for column, runs in broken.items() if runs}
    if broken:
        where = "; ".join(f"{column}: {' '.join(repr(run) for run in runs[:3])}" for column, runs in broken.items())
        flags.append(Flag("mojibake", f"encoding damage (UTF-8 read as Windows-1252, or U+FFFD): {where}"))

    if context.strip() and len(words(context)) >= 10 and coverage(context, response) >= COPY_COVERAGE:
        flags.append(
            Flag("response_copies_context", f"the response repeats {coverage(context, response):.0%} of the context verbatim instead of answering")
        )
    instruction_words = len(words(instruction))
    # A response that restates the question and then answers it adds words; a copy adds (almost) none.
    if instruction_words >= 4 and coverage(instruction, response) >= COPY_COVERAGE and len(words(response)) <= instruction_words + 2:
        flags.append(Flag("response_copies_instruction", "the response mostly repeats the instruction"))

    minimum = MIN_RESPONSE_WORDS.get(category, 1)
    response_words = len(words(response))
    if response_words == 0:
        flags.append(Flag("short_response", "the response is empty"))
    elif response_words < minimum:
        flags.append(Flag("short_response", f"{response_words} word(s): short for {category} (expected at least {minimum})"))

    if category in CATEGORIES_NEEDING_CONTEXT and not context.strip():
        flags.append(Flag("missing_context", f"{category} is answered from a reference text, but the context is empty"))
    if category in CATEGORIES_WITHOUT_CONTEXT and context.strip():
        flags.append(Flag("unexpected_context", f"{category} is answered without a reference text, but a context is given"))

    stopwords = LANGUAGE_STOPWORDS.get(language)
    if stopwords is not None:
        stopword_share, latin_share, count = language_share(f"{instruction} {response}", stopwords)
        if count >= MIN_WORDS_FOR_LANGUAGE and (stopword_share < MIN_STOPWORD_SHARE or latin_share < MIN_LATIN_SHARE):
            flags.append(
                Flag(
                    "other_language",
                    f"instruction and response look not {language}: {stopword_share:.0%} common {language} words, {latin_share:.0%} Latin letters",
                )
            )
    return flags


# -- duplicates across the dataset ------------------------------------------------------------------


def _stable_hashes(items: set[str]) -> np.ndarray:
    # crc32, not hash(): Python's string hash changes per process, and the signals must not.
    return np.fromiter((zlib.crc32(item.encode("utf-8")) for item in items), dtype=np.uint64, count=len(items))


def minhash_signatures(shingle_sets: list[set[str]], permutations: int = MINHASH_PERMUTATIONS, seed: int = 1) -> np.ndarray:
    """One row of `permutations` minimum hashes per set (a row of the maximum for an empty set)."""
    randomness = np.random.default_rng(seed)
    multipliers = randomness.integers(1, 1 << 31, size=permutations, dtype=np.uint64)
    offsets = randomness.integers(0, 1 << 31, size=permutations, dtype=np.uint64)
    signatures = np.full((len(shingle_sets), permutations), np.iinfo(np.uint64).max, dtype=np.uint64)
    hashed = [_stable_hashes(items) for items in shingle_sets]
    lengths = np.array([len(values) for values in hashed])
    non_empty = np.flatnonzero(lengths)
    chunk = 2000  # records per vectorised step: bounds memory at about permutations x chunk x 100 x 8 bytes
    for start in range(0, len(non_empty), chunk):
        rows = non_empty[start : start + chunk]
        values = np.concatenate([hashed[row] for row in rows])
        # a*x + b modulo a Mersenne prime; a, b < 2^31 and x < 2^32 keep the product below 2^63.
        permuted = (values[None, :] * multipliers[:, None] + offsets[:, None]) % _MERSENNE_PRIME
        starts = np.concatenate([[0], np.cumsum(lengths[rows])[:-1]])
        signatures[rows] = np.minimum.reduceat(permuted, starts, axis=1).T
    return signatures


def duplicate_groups(record_ids: list[str], texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> pd.DataFrame:
    """Per record: `duplicate_group` (the smallest id in its group, "" if alone), `duplicate_group_size`,
    `duplicate_kind` (exact / near) and `duplicate_similarity` (best Jaccard with another member)."""
    count = len(record_ids)
    parent = list(range(count))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(left: int, right: int) -> None:
        left, right = root(left), root(right)
        if left != right:
            parent[max(left, right)] = min(left, right)

    normalised = [" ".join(words(text)) for text in texts]
    first_with_text: dict[str, int] = {}
    best = np.zeros(count)
    exact = np.zeros(count, dtype=bool)
    for index, text in enumerate(normalised):
        if not text:
            continue
        if text in first_with_text:
            join(first_with_text[text], index)
            exact[[first_with_text[text], index]] = True
            best[[first_with_text[text], index]] = 1.0
        else:
            first_with_text[text] = index

    sets = [shingles(text) for text in texts]
    signatures = minhash_signatures(sets)
    rows = MINHASH_PERMUTATIONS // LSH_BANDS
    candidates: set[tuple[int, int]] = set()
    for band in range(LSH_BANDS):
        buckets: dict[bytes, list[int]] = {}
        band_values = signatures[:, band * rows : (band + 1) * rows]
        for index in range(count):
            if sets[index]:
                buckets.setdefault(band_values[index].tobytes(), []).append(index)
        for members in buckets.values():
            if len(members) > 1:
                candidates.update((members[0], other) for other in members[1:])
                # chain the rest too: a bucket of k members gives k-1 pairs to check, not k^2
                candidates.update(zip(members[1:-1], members[2:]))
    for left, right in sorted(candidates):
        union = len(sets[left] | sets[right])
        jaccard = len(sets[left] & sets[right]) / union if union else 0.0
        if jaccard >= threshold:
            join(left, right)
            best[left] = max(best[left], jaccard)
            best[right] = max(best[right], jaccard)

    roots = [root(index) for index in range(count)]
    sizes = pd.Series(roots).map(pd.Series(roots).value_counts())
    ids = pd.Series(record_ids, dtype=str)
    group_ids = ids.groupby(pd.Series(roots)).transform(lambda members: min(members, key=_id_key))
    alone = sizes == 1
    return pd.DataFrame(
        {
            "id": ids,
            "duplicate_group": group_ids.where(~alone, ""),
            "duplicate_group_size": sizes.where(~alone, 0).astype(int),
            "duplicate_kind": np.where(alone, "", np.where(exact, "exact", "near")),
            "duplicate_similarity": np.where(alone, 0.0, best).round(3),
        }
    )


def _id_key(record_id: str) -> tuple:
    return (0, int(record_id), "") if record_id.isdigit() else (1, 0, record_id)


# -- the whole dataset ------------------------------------------------------------------------------

SIGNAL_COLUMNS = [
    "id", "flags", "reasons", "priority",
    "duplicate_group", "duplicate_group_size",
    "citation_markers", "instruction_words", "context_words", "response_words",
    "clean_instruction", "clean_context", "clean_response", "fixable",
]  # fmt: skip


def compute_quality_signals(records: pd.DataFrame, language: str = "en") -> pd.DataFrame:
    """One row per record: flag names, reasons, review priority, duplicate group, lengths and the cleaned texts.

    `fixable` is True when the cleaned texts differ from the originals (a rule can propose a fix).
    """
    rows = records.to_dict("records")
    duplicates = duplicate_groups(
        [str(row["id"]) for row in rows], [f"{row.get('instruction') or ''} {row.get('response') or ''}" for row in rows]
    )
    output = []
    for row, duplicate in zip(rows, duplicates.to_dict("records")):
        flags = record_flags(row, language)
        if duplicate["duplicate_group_size"]:
            others = duplicate["duplicate_group_size"] - 1
            flags.append(
                Flag(
                    "duplicate",
                    f"{duplicate['duplicate_kind']} duplicate of {others} other record(s) in group {duplicate['duplicate_group']}"
                    + ("" if duplicate["duplicate_kind"] == "exact" else f" (word overlap {duplicate['duplicate_similarity']:.0%})"),
                )
            )
        cleaned = {column: clean_text(row.get(column) or "") for column in TEXT_COLUMNS}
        output.append(
            {
                "id": str(row["id"]),
                "flags": [flag.name for flag in flags],
                "reasons": [f"{flag.name}: {flag.reason}" for flag in flags],
                "priority": sum(FLAG_WEIGHTS[flag.name] for flag in flags),
                "duplicate_group": duplicate["duplicate_group"],
                "duplicate_group_size": duplicate["duplicate_group_size"],
                "citation_markers": sum(len(citation_markers(row.get(column) or "")) for column in TEXT_COLUMNS),
                "instruction_words": len(words(row.get("instruction"))),
                "context_words": len(words(row.get("context"))),
                "response_words": len(words(row.get("response"))),
                **{f"clean_{column}": cleaned[column] for column in TEXT_COLUMNS},
                "fixable": any(cleaned[column] != (row.get(column) or "") for column in TEXT_COLUMNS),
            }
        )
    return pd.DataFrame(output, columns=SIGNAL_COLUMNS)


def flag_counts(signals: pd.DataFrame) -> dict[str, int]:
    """Records per flag, every flag listed (0 too), plus how many records carry no flag."""
    counts = {flag: 0 for flag in FLAGS}
    for flags in signals["flags"]:
        for flag in flags:
            counts[flag] += 1
    counts[NO_FLAG] = int(sum(1 for flags in signals["flags"] if not flags))
    return counts


def review_order(records: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """The records, highest priority first; ties keep their given order (stable sort)."""
    priority = records["id"].astype(str).map(signals.set_index("id")["priority"]).fillna(0)
    return records.iloc[np.argsort(-priority.to_numpy(), kind="stable")]
