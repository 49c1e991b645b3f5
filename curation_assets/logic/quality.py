"""Quality signals: deterministic, explainable flags per record, and the rule fixes that are safe to propose.

Every flag has a name (a filterable Argilla metadata term) and a reason a person can check by
reading the record. Nothing here is learned or random: the same records give the same signals.
"""

from __future__ import annotations

import re
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

# Language: shares of common function words of English and of a few other languages, and the share of
# Latin letters. Enough to tell English from other languages on a sentence or more, with no model to download.
ENGLISH_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i me my not no do does did have has had "
    "will would can could should may might what which who whom when where why how all any some more most than "
    "then so such also into about over after before between through during up down out only very just".split()
)
OTHER_LANGUAGE_STOPWORDS = {
    "de": frozenset("der die das und ist nicht ein eine einen dem den des mit von zu auf für sich auch noch wie wir sie er es ich aber nach bei oder wird sind war wurde im zum zur".split()),
    "es": frozenset("el la los las y es un una unos con de del en por para que se también como pero cuando está son fue muy su sus al lo le".split()),
    "fr": frozenset("le la les et est un une des du de dans pour que qui ne pas sur avec il elle nous vous ce cette sont été au aux par plus".split()),
    "it": frozenset("il lo la gli le e è un una di del della che non per con sono anche come ma nel alla più".split()),
    "pt": frozenset("o os as e é um uma de do da dos das em para que não com por também como mas são foi muito".split()),
    "nl": frozenset("de het een en is van te dat die niet op met voor zijn er maar ook als bij door wordt werd".split()),
}  # fmt: skip
LANGUAGE_STOPWORDS = {"en": ENGLISH_STOPWORDS, **OTHER_LANGUAGE_STOPWORDS}
MIN_WORDS_FOR_LANGUAGE = 8  # shorter texts (a name, a list of items) say nothing about their language
MIN_WORDS_FOR_MISSING_STOPWORDS = 20  # "almost no function words" needs more text to be telling
MIN_STOPWORD_SHARE = 0.05
MIN_OTHER_STOPWORD_SHARE = 0.15
MIN_LATIN_SHARE = 0.6

# Near duplicates: MinHash over word 3-shingles of instruction + response, LSH banding, then the exact
# Jaccard similarity of the candidates decides.
SHINGLE_WORDS = 3
MINHASH_PERMUTATIONS = 64
LSH_BANDS = 32  # 2 rows per band: a pair at Jaccard 0.6 becomes a candidate with probability 1 - (1 - 0.6^2)^32 > 0.9999
NEAR_DUPLICATE_JACCARD = 0.6
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
    return CITATION_MARKER.sub("", text) if text and "[" in text else text or ""


def normalise_whitespace(text: str) -> str:
    """Invisible and control characters out, no runs of spaces or blank lines, no spaces at line ends, stripped.

    Typographic spaces (no-break, thin) are real characters of the text and stay.
    """
    text = text or ""
    # Most texts have no damage, and substring tests are much cheaper than five rewrites.
    if not ("  " in text or " \n" in text or "\n\n\n" in text or "\r" in text or text != text.strip() or _INVISIBLE.search(text)):
        return text
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _SPACE_RUN.sub(" ", text)
    text = _TRAILING_LINE_SPACE.sub("\n", text)
    text = _NEWLINE_RUN.sub("\n\n", text)
    return text.strip()


def repair_mojibake(text: str) -> str:
    """Decode runs of UTF-8-read-as-cp1252 back; runs that do not round-trip stay as they are."""

    text = text or ""

    def repair(match: re.Match) -> str:
        run = match.group(0)
        for encoding in ("cp1252", "latin-1"):
            try:
                return run.encode(encoding).decode("utf-8")
            except UnicodeError:
                continue
        return run

    return text if text.isascii() else _MOJIBAKE_RUN.sub(repair, text)


def mojibake_runs(text: str) -> list[str]:
    """Damaged runs that a repair would change, and U+FFFD replacement characters (lost for good)."""
    if (text or "").isascii():
        return []
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


def shingles_of(tokens: list[str], size: int = SHINGLE_WORDS) -> set[str]:
    if len(tokens) < size:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[index : index + size]) for index in range(len(tokens) - size + 1)}


def _coverage(source_shingles: set[str], target_shingles: set[str]) -> float:
    return len(source_shingles & target_shingles) / len(source_shingles) if source_shingles else 0.0


_LETTER = re.compile(r"[^\W\d_]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")


def _stopword_share(tokens: list[str], stopwords: frozenset[str]) -> float:
    return sum(1 for token in tokens if token in stopwords) / len(tokens) if tokens else 0.0


def _latin_share(text: str) -> float:
    if text.isascii():
        return 1.0
    letters = len(_LETTER.findall(text))
    return len(_LATIN_LETTER.findall(text)) / letters if letters else 1.0


def language_verdict(tokens: list[str], text: str, language: str) -> str | None:
    """Why the text looks not written in `language` (one of LANGUAGE_STOPWORDS), or None; texts under 8 words pass."""
    if len(tokens) < MIN_WORDS_FOR_LANGUAGE:
        return None
    latin = _latin_share(text)
    if latin < MIN_LATIN_SHARE:  # every language with a stopword list here is written in Latin letters
        return f"only {latin:.0%} of the letters are Latin"
    own = _stopword_share(tokens, LANGUAGE_STOPWORDS[language])
    for other, stopwords in LANGUAGE_STOPWORDS.items():
        share = _stopword_share(tokens, stopwords) if other != language else 0.0
        if share >= MIN_OTHER_STOPWORD_SHARE and share > own:
            return f"{share:.0%} of the words are common {other} words against {own:.0%} common {language} ones"
    if len(tokens) >= MIN_WORDS_FOR_MISSING_STOPWORDS and own < MIN_STOPWORD_SHARE:
        return f"only {own:.0%} of {len(tokens)} words are common {language} words"
    return None


# -- per-record flags -------------------------------------------------------------------------------


def record_flags(record: dict, language: str = "en") -> list[Flag]:
    """The flags of one record that need no other record (duplicates are found across the dataset)."""
    return _record_flags(record, {column: words(record.get(column)) for column in TEXT_COLUMNS}, language)


def _record_flags(record: dict, tokens: dict[str, list[str]], language: str) -> list[Flag]:
    instruction, context, response = (record.get(column) or "" for column in TEXT_COLUMNS)
    category = record.get("category") or ""
    flags = []

    markers = {column: citation_markers(record.get(column) or "") for column in TEXT_COLUMNS}
    found = {column: found for column, found in markers.items() if found}
    if found:
        where = "; ".join(f"{column}: {len(items)} ({' '.join(items[:4])}{' ...' if len(items) > 4 else ''})" for column, items in found.items())
        flags.append(Flag("citation_markers", f"Wikipedia citation markers, remove them: {where}"))

    # Judged after the encoding repair: a damaged "à" ends in a no-break space that stripping would remove.
    damaged = [
        column
        for column in TEXT_COLUMNS
        if normalise_whitespace(text := remove_citation_markers(repair_mojibake(record.get(column) or ""))) != text
    ]
    if damaged:
        flags.append(Flag("whitespace", f"stray whitespace or invisible characters in {', '.join(damaged)}"))

    broken = {column: mojibake_runs(record.get(column) or "") for column in TEXT_COLUMNS}
    broken = {column: runs for column, runs in broken.items() if runs}
    if broken:
        where = "; ".join(f"{column}: {' '.join(repr(run) for run in runs[:3])}" for column, runs in broken.items())
        flags.append(Flag("mojibake", f"encoding damage (UTF-8 read as Windows-1252, or U+FFFD): {where}"))

    response_shingles = shingles_of(tokens["response"])
    copied = _coverage(shingles_of(tokens["context"]), response_shingles) if len(tokens["context"]) >= 10 else 0.0
    if copied >= COPY_COVERAGE:
        flags.append(Flag("response_copies_context", f"the response repeats {copied:.0%} of the context verbatim instead of answering"))
    instruction_words = len(tokens["instruction"])
    # A response that restates the question and then answers it adds words; a copy adds (almost) none.
    response_words = len(tokens["response"])
    if (
        instruction_words >= 4
        and response_words <= instruction_words + 2
        and _coverage(shingles_of(tokens["instruction"]), response_shingles) >= COPY_COVERAGE
    ):
        flags.append(Flag("response_copies_instruction", "the response mostly repeats the instruction"))

    minimum = MIN_RESPONSE_WORDS.get(category, 1)
    if response_words == 0:
        flags.append(Flag("short_response", "the response is empty"))
    elif response_words < minimum:
        flags.append(Flag("short_response", f"{response_words} word(s): short for {category} (expected at least {minimum})"))

    if category in CATEGORIES_NEEDING_CONTEXT and not context.strip():
        flags.append(Flag("missing_context", f"{category} is answered from a reference text, but the context is empty"))
    if category in CATEGORIES_WITHOUT_CONTEXT and context.strip():
        flags.append(Flag("unexpected_context", f"{category} is answered without a reference text, but a context is given"))

    if language in LANGUAGE_STOPWORDS:
        verdict = language_verdict(tokens["instruction"] + tokens["response"], f"{instruction} {response}", language)
        if verdict:
            flags.append(Flag("other_language", f"instruction and response look not written in {language}: {verdict}"))
    return flags


# -- duplicates across the dataset ------------------------------------------------------------------


# Odd 64-bit constants that mix a shingle's word hashes position by position ("a b c" differs from "c b a").
_MIXERS = tuple(np.uint64(value) for value in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9))


def shingle_hashes(tokens: list[str], word_hashes: dict[str, int]) -> np.ndarray:
    """Sorted unique 64-bit hashes of the word 3-shingles (one, zero-padded, for shorter texts).

    Words are hashed with crc32, not hash(): Python's string hash changes per process, and the
    signals must not. `word_hashes` caches them across records.
    """
    if not tokens:
        return np.empty(0, dtype=np.uint64)
    for token in tokens:
        if token not in word_hashes:
            word_hashes[token] = zlib.crc32(token.encode("utf-8"))
    ids = np.fromiter((word_hashes[token] for token in tokens), dtype=np.uint64, count=len(tokens))
    if len(ids) < SHINGLE_WORDS:
        ids = np.concatenate([ids, np.zeros(SHINGLE_WORDS - len(ids), dtype=np.uint64)])
    width = len(ids) - SHINGLE_WORDS + 1
    mixed = sum(ids[offset : offset + width] * _MIXERS[offset] for offset in range(SHINGLE_WORDS))  # wraps modulo 2^64
    return np.unique(mixed)


def minhash_signatures(hash_sets: list[np.ndarray], permutations: int = MINHASH_PERMUTATIONS, seed: int = 1) -> np.ndarray:
    """One row of `permutations` minimum hashes per set (a row of the maximum for an empty set)."""
    randomness = np.random.default_rng(seed)
    multipliers = randomness.integers(1, 1 << 31, size=permutations, dtype=np.uint64)
    offsets = randomness.integers(0, 1 << 31, size=permutations, dtype=np.uint64)
    signatures = np.full((len(hash_sets), permutations), np.iinfo(np.uint64).max, dtype=np.uint64)
    lengths = np.array([len(values) for values in hash_sets], dtype=np.int64)
    non_empty = np.flatnonzero(lengths)
    chunk = 2000  # records per vectorised step: bounds memory at about permutations x chunk x 100 x 8 bytes
    for start in range(0, len(non_empty), chunk):
        rows = non_empty[start : start + chunk]
        values = np.concatenate([hash_sets[row] for row in rows]) >> np.uint64(32)
        # a*x + b modulo a Mersenne prime; a, b < 2^31 and x < 2^32 keep the product below 2^63.
        permuted = (values[None, :] * multipliers[:, None] + offsets[:, None]) % _MERSENNE_PRIME
        starts = np.concatenate([[0], np.cumsum(lengths[rows])[:-1]])
        signatures[rows] = np.minimum.reduceat(permuted, starts, axis=1).T
    return signatures


def lsh_candidates(signatures: np.ndarray, non_empty: np.ndarray, bands: int = LSH_BANDS) -> set[tuple[int, int]]:
    """Pairs of rows that agree on all rows of at least one band (each bucket: its first member with every other)."""
    rows_per_band = signatures.shape[1] // bands
    candidates: set[tuple[int, int]] = set()
    for band in range(bands):
        columns = signatures[non_empty, band * rows_per_band : (band + 1) * rows_per_band]
        keys = sum(columns[:, offset] * _MIXERS[offset % len(_MIXERS)] for offset in range(rows_per_band))
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        run_starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
        run_ends = np.concatenate([run_starts[1:], [len(order)]])
        for run_start, run_end in zip(run_starts[run_ends - run_starts > 1], run_ends[run_ends - run_starts > 1]):
            members = non_empty[order[run_start:run_end]]
            candidates.update((int(members[0]), int(other)) for other in members[1:])
    return candidates


def duplicate_groups(record_ids: list[str], texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> pd.DataFrame:
    """Per record: `duplicate_group` (the smallest id in its group, "" if alone), `duplicate_group_size`,
    `duplicate_kind` (exact / near) and `duplicate_similarity` (best Jaccard with another member)."""
    return _duplicate_groups(record_ids, [words(text) for text in texts], threshold)


def _duplicate_groups(record_ids: list[str], token_lists: list[list[str]], threshold: float) -> pd.DataFrame:
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

    first_with_text: dict[str, int] = {}
    best = np.zeros(count)
    exact = np.zeros(count, dtype=bool)
    for index, tokens in enumerate(token_lists):
        text = " ".join(tokens)
        if not text:
            continue
        if text in first_with_text:
            join(first_with_text[text], index)
            exact[[first_with_text[text], index]] = True
            best[[first_with_text[text], index]] = 1.0
        else:
            first_with_text[text] = index

    word_hashes: dict[str, int] = {}
    hash_sets = [shingle_hashes(tokens, word_hashes) for tokens in token_lists]
    non_empty = np.flatnonzero([len(values) > 0 for values in hash_sets])
    for left, right in sorted(lsh_candidates(minhash_signatures(hash_sets), non_empty)):
        if root(left) == root(right) and best[left] == 1.0 and best[right] == 1.0:
            continue  # already exact duplicates of each other
        shared = len(np.intersect1d(hash_sets[left], hash_sets[right], assume_unique=True))
        jaccard = shared / (len(hash_sets[left]) + len(hash_sets[right]) - shared)
        if jaccard >= threshold:
            join(left, right)
            best[left] = max(best[left], jaccard)
            best[right] = max(best[right], jaccard)

    roots = [root(index) for index in range(count)]
    smallest: dict[int, str] = {}
    for index, group in enumerate(roots):
        if group not in smallest or _id_key(record_ids[index]) < _id_key(smallest[group]):
            smallest[group] = record_ids[index]
    sizes = pd.Series(roots).map(pd.Series(roots).value_counts())
    ids = pd.Series(record_ids, dtype=str)
    group_ids = pd.Series([smallest[group] for group in roots], dtype=str)
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
    tokens = [{column: words(row.get(column)) for column in TEXT_COLUMNS} for row in rows]
    duplicates = _duplicate_groups(
        [str(row["id"]) for row in rows], [fields["instruction"] + fields["response"] for fields in tokens], NEAR_DUPLICATE_JACCARD
    )
    output = []
    for row, fields, duplicate in zip(rows, tokens, duplicates.to_dict("records")):
        flags = _record_flags(row, fields, language)
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
                "instruction_words": len(fields["instruction"]),
                "context_words": len(fields["context"]),
                "response_words": len(fields["response"]),
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
