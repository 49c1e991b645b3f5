"""Quality signals: deterministic, explainable flags per record, and the rule fixes that are safe to propose.

Every flag has a name (a filterable Argilla metadata term) and a reason a person can check by
reading the record. Nothing here is learned or random: the same records give the same signals.

Records are processed in chunks: within a chunk the words of every text become one flat array of
64-bit word hashes, and the word counts, function-word shares, copied shingles and MinHash
signatures are computed for the whole chunk at once with numpy. Only what a rule must read
character by character (citation markers, whitespace, encoding) runs per text, and only on texts a
cheap test cannot clear. Chunks are independent, so large datasets spread them over processes;
duplicates are then found across all records in the calling process.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa

from .collector import collector_paused

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
# A marker takes one space or tab before it along (removing "word [1]." leaves "word.").
CITATION_MARKER = re.compile(r"\[(?:\d{1,3}|[a-z]|citation needed|note \d{1,3}|nb \d{1,3})\]", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Two spaces after a full stop is a typing style; elsewhere, or three and more, it is damage.
_SPACE_RUN = re.compile(r" {3,}|(?<![.!?:;\s]) {2,}")
_TRAILING_LINE_SPACE = re.compile(r"[ ]+\n")
_NEWLINE_RUN = re.compile(r"\n{3,}")
# UTF-8 read as Windows-1252/Latin-1: "Ã©", "â€™", "Â ". A run of such characters is repaired only if it
# round-trips to valid UTF-8, so correct accented text ("café", "Ångström") is never touched.
_MOJIBAKE_RUN = re.compile(
    r"[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]+"
)

# Language: shares of common function words of English and of a few other languages, and the share of
# Latin letters. Enough to tell English from other languages on a sentence or more, with no model to download.
ENGLISH_STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there their they them he she his her we our you your i me my not no do does did have has had "
    "will would can could should may might what which who whom when where why how all any some more most than "
    "then so such also into about over after before between through during up down out only very just".split()
)
OTHER_LANGUAGE_STOPWORDS = {
    "de": frozenset(
        "der die das und ist nicht ein eine einen dem den des mit von zu auf für sich "
        "auch noch wie wir sie er es ich aber nach bei oder wird sind war wurde im zum zur".split()
    ),
    "es": frozenset(
        "el la los las y es un una unos con de del en por para "
        "que se también como pero cuando está son fue muy su sus al lo le".split()
    ),
    "fr": frozenset(
        "le la les et est un une des du de dans pour que qui ne "
        "pas sur avec il elle nous vous ce cette sont été au aux par plus".split()
    ),
    "it": frozenset("il lo la gli le e è un una di del della che non per con sono anche come ma nel alla più".split()),
    "pt": frozenset(
        "o os as e é um uma de do da dos das "
        "em para que não com por também como mas são foi muito".split()
    ),
    "nl": frozenset(
        "de het een en is van te dat die niet op "
        "met voor zijn er maar ook als bij door wordt werd".split()
    ),
}  # fmt: skip
LANGUAGE_STOPWORDS = {"en": ENGLISH_STOPWORDS, **OTHER_LANGUAGE_STOPWORDS}
MIN_WORDS_FOR_LANGUAGE = 8  # shorter texts (a name, a list of items) say nothing about their language
MIN_LETTERS_FOR_SCRIPT = 20  # ... but 20 letters tell the script of a text written without spaces
MIN_WORDS_FOR_MISSING_STOPWORDS = 20  # "almost no function words" needs more text to be telling
MIN_STOPWORD_SHARE = 0.05
MIN_OTHER_STOPWORD_SHARE = 0.15
MIN_LATIN_SHARE = 0.6

# Near duplicates: MinHash over word 3-shingles of instruction + response, LSH banding, then the exact
# Jaccard similarity of the candidates decides.
SHINGLE_WORDS = 3
LSH_BANDS = 32
ROWS_PER_BAND = 2  # a pair at Jaccard 0.6 becomes a candidate with probability 1 - (1 - 0.6^2)^32 > 0.9999
MINHASH_PERMUTATIONS = LSH_BANDS * ROWS_PER_BAND
NEAR_DUPLICATE_JACCARD = 0.6
# A candidate pair whose signatures agree on fewer than 30% of the permutations is dropped without the exact
# Jaccard: for a pair at 0.6 that happens with probability below 1e-6 (binomial, 64 permutations), and most
# candidates of the permissive 2-row bands are such pairs (at Jaccard 0.2 a pair is a candidate 73% of the time).
MIN_ESTIMATED_JACCARD = 0.3
COPY_COVERAGE = 0.8  # share of the source's shingles found in the response

# Records per chunk of the per-record work: a chunk's word arrays stay in the tens of megabytes.
CHUNK_RECORDS = 4096
# Below this many records, starting worker processes (about a second) costs more than it saves.
MIN_RECORDS_FOR_WORKERS = 50_000


@dataclass(frozen=True)
class Flag:
    name: str
    reason: str


# -- text rules -------------------------------------------------------------------------------------


def _citation_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each marker with the space or tab before it, left to right, not overlapping.

    Found from the "[" characters (str.find) rather than one regular expression with an optional
    leading space, which tried a match at every position of every text: four times slower here.
    """
    spans: list[tuple[int, int]] = []
    end, position = 0, text.find("[")
    while position >= 0:
        match = CITATION_MARKER.match(text, position)
        if match is None:
            position = text.find("[", position + 1)
            continue
        start = position - 1 if position > end and text[position - 1] in " \t" else position
        spans.append((start, match.end()))
        end = match.end()
        position = text.find("[", end)
    return spans


def citation_markers(text: str) -> list[str]:
    text = text or ""
    return [text[start:end].strip() for start, end in _citation_spans(text)]


def remove_citation_markers(text: str) -> str:
    text = text or ""
    return _without_spans(text, _citation_spans(text))


def _without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    kept, previous = [], 0
    for start, end in spans:
        kept.append(text[previous:start])
        previous = end
    kept.append(text[previous:])
    return "".join(kept)


def _may_need_whitespace_fix(text: str) -> bool:
    """False when normalise_whitespace would surely leave the text as it is: substring tests, far cheaper than its
    rewrites."""
    return bool(
        "  " in text
        or " \n" in text
        or "\n\n\n" in text
        or "\r" in text
        or text != text.strip()
        or _INVISIBLE.search(text)
    )


def normalise_whitespace(text: str) -> str:
    """Invisible and control characters out, no runs of spaces or blank lines, no spaces at line ends, stripped.

    Typographic spaces (no-break, thin) are real characters of the text and stay.
    """
    text = text or ""
    if not _may_need_whitespace_fix(text):
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
    runs = [run for run in _MOJIBAKE_RUN.findall(text) if repair_mojibake(run) != run]
    return runs + ["\ufffd"] * text.count("\ufffd")


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


@dataclass(frozen=True)
class TextFindings:
    """What the character-level rules find in one text, and the text with their fixes applied."""

    citation_markers: list[str]
    whitespace_damaged: bool
    mojibake_runs: list[str]
    cleaned: str


def text_findings(text: str) -> TextFindings | None:
    """The character-level rules on one text; None when they find nothing and change nothing.

    Most texts (ASCII, no bracket, tidy whitespace) are cleared by substring tests alone, with the
    answer the rules would give.
    """
    if text.isascii() and "[" not in text and not _may_need_whitespace_fix(text):
        return None
    runs = mojibake_runs(text)
    spans = _citation_spans(text)
    markers = [text[start:end].strip() for start, end in spans]
    # Whitespace is judged after the encoding repair: a damaged "à" ends in a no-break space that stripping would
    # remove.
    repaired = remove_citation_markers(repair_mojibake(text)) if runs else _without_spans(text, spans)
    normalised = normalise_whitespace(repaired)
    # clean_text's first round is `normalised`; the rounds after it start from there.
    cleaned = text if normalised == text else clean_text(normalised)
    if not (markers or runs or normalised != repaired or cleaned != text):
        return None
    return TextFindings(markers, normalised != repaired, runs, cleaned)


# -- words ------------------------------------------------------------------------------------------

# ASCII text: letters (lower-cased), digits and "_" are word characters, exactly as \w on ASCII; every other
# byte becomes a space. bytes.translate + split is several times faster than the regular expression.
_ASCII_WORD_BYTES = bytes(
    byte + 32 if 65 <= byte <= 90 else byte if (48 <= byte <= 57 or 97 <= byte <= 122 or byte == 95) else 32
    for byte in range(256)
)
# The same for UTF-8 whose non-ASCII characters are all word characters: their bytes (128 and up) stay.
_UTF8_WORD_BYTES = _ASCII_WORD_BYTES[:128] + bytes(range(128, 256))
_LANGUAGES = tuple(LANGUAGE_STOPWORDS)
# Per function word, one bit per language of _LANGUAGES whose list holds it.
_STOPWORD_BITS: dict[bytes, int] = {
    word.encode("utf-8"): sum(
        1 << position for position, language in enumerate(_LANGUAGES) if word in LANGUAGE_STOPWORDS[language]
    )
    for word in set().union(*LANGUAGE_STOPWORDS.values())
}


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_IS_WORD_CHARACTER: dict[str, bool] = {}  # the verdict of \w on each non-ASCII character met


def word_tokens(text: str) -> list[bytes]:
    """The lower-cased words (runs of \\w) of a text, UTF-8 encoded.

    The same words as the regular expression, found faster: non-word characters become spaces
    (the few distinct non-ASCII ones, such as "’", by str.replace; the ASCII ones by one byte table),
    and the bytes are split at the spaces.
    """
    return _word_bytes(text).split()


def _word_bytes(text: str) -> bytes:
    """The text lower-cased and UTF-8 encoded, every non-word character a space: its words are this split at spaces."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORD_BYTES)
    lowered = text.lower()
    for character in set(_NON_ASCII.findall(lowered)):
        if not _IS_WORD_CHARACTER.setdefault(character, character.isalnum()):
            lowered = lowered.replace(character, " ")
    return lowered.encode("utf-8").translate(_UTF8_WORD_BYTES)


def word_hash(word: bytes) -> int:
    """A 64-bit hash of a word that is the same in every process and run (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(word, digest_size=8).digest(), "little")


class _Vocabulary(dict):
    """Word → dense index in this process, with each word's 64-bit hash and function-word bits.

    Hashing a word (blake2b) costs more than a dictionary look-up, and most words recur. The indices
    are only used within one call; everything that leaves it is built from the hashes.
    """

    LIMIT = 1_000_000  # words; starting afresh past this bounds the memory on a huge vocabulary

    def __init__(self) -> None:
        super().__init__()
        self._forget()

    def _forget(self) -> None:
        self.clear()
        self._new_hashes: list[int] = []
        self._new_bits: list[int] = []
        self._hashes = np.empty(0, dtype=np.uint64)
        self._bits = np.empty(0, dtype=np.uint8)

    def __missing__(self, word: bytes) -> int:
        index = self[word] = len(self)
        self._new_hashes.append(word_hash(word))
        self._new_bits.append(_STOPWORD_BITS.get(word, 0))
        return index

    def hashes_and_bits(self, indices: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The hash and the function-word bits of each word of `indices()`, the words' indices in this vocabulary."""
        if len(self) > self.LIMIT:
            self._forget()
        found = indices()
        if self._new_hashes:
            self._hashes = np.concatenate([self._hashes, np.array(self._new_hashes, dtype=np.uint64)])
            self._bits = np.concatenate([self._bits, np.array(self._new_bits, dtype=np.uint8)])
            self._new_hashes, self._new_bits = [], []
        return self._hashes[found], self._bits[found]


_VOCABULARY = _Vocabulary()


# Words of up to this many bytes are told apart by their bytes packed into two 64-bit integers, in numpy.
_PACKED_WORD_BYTES = 16


@dataclass
class _Words:
    """The words of a list of texts, flat: text i's words are `hashes[starts[i] : starts[i] + counts[i]]`.

    Found without a Python object per word: the texts' word bytes (`_word_bytes`) are joined by spaces
    into one buffer, numpy finds where each word starts and ends, and words are told apart by their
    bytes packed into integers. Only each distinct word becomes a `bytes`, to look up its hash.
    """

    hashes: np.ndarray  # uint64 per word
    stopword_bits: np.ndarray  # uint8 per word
    counts: np.ndarray
    starts: np.ndarray
    # Every word followed by one space, in order: words `first .. last` joined by spaces are
    # joined[word_offsets[first] : word_offsets[last + 1] - 1].
    joined: bytes
    word_offsets: np.ndarray

    @classmethod
    def of(cls, texts: list[str]) -> _Words:
        parts = [_word_bytes(text) for text in texts]
        buffer = b" ".join(parts)
        characters = np.frombuffer(buffer, dtype=np.uint8)
        in_word = np.concatenate([[False], characters != ord(" "), [False]])  # padded: False before and after
        changes = np.diff(in_word.astype(np.int8))
        word_starts, word_ends = np.flatnonzero(changes == 1), np.flatnonzero(changes == -1)
        part_lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        text_offsets = np.concatenate([[0], np.cumsum(part_lengths + 1)])  # each part and the space after it
        first_words = np.searchsorted(word_starts, text_offsets)
        counts = np.diff(first_words)
        lengths = word_ends - word_starts
        hashes, bits = _VOCABULARY.hashes_and_bits(lambda: _vocabulary_indices(buffer, word_starts, lengths))
        # The bytes of the words and the one byte after each (a space, or past the end): the words joined by spaces.
        keep = in_word[1:-1] | in_word[:-2]
        joined = characters[keep].tobytes() + b" "
        word_offsets = np.concatenate([[0], np.cumsum(lengths + 1)])
        return cls(hashes, bits, counts, first_words[:-1].astype(np.int64), joined, word_offsets)

    def digests(self, first_texts: np.ndarray, word_counts: np.ndarray) -> list[bytes | None]:
        """`duplicate_text_digest` of the words of consecutive texts: `word_counts[i]` words from `first_texts[i]`'s."""
        first = self.starts[first_texts]
        begin, end = self.word_offsets[first], self.word_offsets[first + word_counts] - 1
        view = memoryview(self.joined)
        return [
            hashlib.blake2b(view[start:stop], digest_size=16).digest() if count else None
            for start, stop, count in zip(begin.tolist(), end.tolist(), word_counts.tolist())
        ]


# Per word length up to 8, the mask of a little-endian 64-bit integer's bytes that hold the word.
_BYTE_MASKS = np.array([(1 << (8 * length)) - 1 for length in range(9)], dtype=np.uint64)


def _vocabulary_indices(buffer: bytes, word_starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The _VOCABULARY index of each word `buffer[start : start + length]`, looking up each distinct word once.

    Words are told apart by their bytes read as little-endian integers (a view of the buffer with a stride of one
    byte), masked to their length; no word holds a zero byte, so equal words give equal integers and the other way
    round. Words of up to 8 bytes (most) are one integer; of up to 16, two; longer ones are compared as bytes.
    """
    indices = np.empty(len(word_starts), dtype=np.int64)
    padded = buffer + bytes(_PACKED_WORD_BYTES)
    at = np.ndarray(shape=(len(buffer) + 8,), dtype="<u8", buffer=padded, strides=(1,))
    short = np.flatnonzero(lengths <= 8)
    codes, _ = pd.factorize(at[word_starts[short]] & _BYTE_MASKS[lengths[short]])
    indices[short] = _distinct_word_indices(buffer, word_starts[short], lengths[short], codes)
    middle = np.flatnonzero((lengths > 8) & (lengths <= _PACKED_WORD_BYTES))
    if len(middle):
        first_codes, _ = pd.factorize(at[word_starts[middle]])
        second_codes, seconds = pd.factorize(at[word_starts[middle] + 8] & _BYTE_MASKS[lengths[middle] - 8])
        codes, _ = pd.factorize(first_codes * len(seconds) + second_codes)
        indices[middle] = _distinct_word_indices(buffer, word_starts[middle], lengths[middle], codes)
    longer = np.flatnonzero(lengths > _PACKED_WORD_BYTES)
    ends = word_starts[longer] + lengths[longer]
    indices[longer] = [
        _VOCABULARY[buffer[start:end]] for start, end in zip(word_starts[longer].tolist(), ends.tolist())
    ]
    return indices


def _distinct_word_indices(
    buffer: bytes, word_starts: np.ndarray, lengths: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """Per word, the _VOCABULARY index of its code's word; `codes` number the words in order of first appearance (as
    pd.factorize does), so a word's first occurrence is where its code exceeds every code before it."""
    firsts = np.flatnonzero(codes > np.maximum.accumulate(np.concatenate([[-1], codes[:-1]])))
    starts = word_starts[firsts].tolist()
    ends = (word_starts[firsts] + lengths[firsts]).tolist()
    distinct = np.fromiter(
        map(_VOCABULARY.__getitem__, map(buffer.__getitem__, map(slice, starts, ends))),
        dtype=np.int64,
        count=len(starts),
    )
    return distinct[codes]


# Odd 64-bit constants that mix a shingle's word hashes position by position ("a b c" differs from "c b a").
_MIXERS = tuple(np.uint64(value) for value in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9))


def _segment_positions(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For segments `[start, start + length)` of a flat array: every position in them, its segment and its rank within it."""
    lengths = np.asarray(lengths, dtype=np.int64)
    segment = np.repeat(np.arange(len(lengths)), lengths)
    rank = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + rank, segment, rank


def segment_shingles(word_hashes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the word 3-shingles of each segment `word_hashes[start : start + length]`, and the segment of each.

    A segment of one or two words gives one shingle of its words, zero-padded; an empty one gives none.
    Shingles come in segment order, so the segment numbers are sorted.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    positions, segment, rank = _segment_positions(starts, lengths)
    total = len(positions)
    words = word_hashes[positions]
    segment_length = lengths[segment]
    mixed = words * _MIXERS[0]  # wraps modulo 2^64
    for offset in range(1, SHINGLE_WORDS):
        following = np.zeros(total, dtype=np.uint64)
        following[:-offset] = words[offset:]
        mixed += np.where(rank + offset < segment_length, following, np.uint64(0)) * _MIXERS[offset]
    keep = rank < np.maximum(segment_length - (SHINGLE_WORDS - 1), 1)
    return mixed[keep], segment[keep]


def _coverage(
    source: np.ndarray, source_segment: np.ndarray, target: np.ndarray, target_segment: np.ndarray, count: int
) -> np.ndarray:
    """Per segment, the share of the source's distinct shingles that the target (same segment) also has."""
    # The segment number goes into the key (times an odd constant), so one hash table serves all segments.
    spread = np.uint64(0xD6E8FEB86659FD93)
    source_keys = pd.Series(source + source_segment.astype(np.uint64) * spread)
    first = ~source_keys.duplicated().to_numpy()
    found = source_keys[first].isin(pd.Series(target + target_segment.astype(np.uint64) * spread)).to_numpy()
    owner = source_segment[first]
    return np.bincount(owner[found], minlength=count) / np.maximum(np.bincount(owner, minlength=count), 1)


# -- MinHash ----------------------------------------------------------------------------------------

_PERMUTATION_RANDOMNESS = np.random.default_rng(1)
# Each permutation is x -> a*x + b modulo 2^32 (a odd: a bijection) on 32 well-mixed bits of the shingle hash.
_MULTIPLIERS = (_PERMUTATION_RANDOMNESS.integers(0, 1 << 32, size=MINHASH_PERMUTATIONS, dtype=np.uint64) | 1).astype(
    np.uint32
)
_OFFSETS = _PERMUTATION_RANDOMNESS.integers(0, 1 << 32, size=MINHASH_PERMUTATIONS, dtype=np.uint64).astype(np.uint32)
_MINHASH_BATCH = 32_768  # shingles per vectorised step: permutations x batch x 4 bytes stays in the cache (8 MiB)


def _finalise(values: np.ndarray) -> np.ndarray:
    """Murmur3's 64-bit finaliser: every output bit depends on every input bit."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values


def minhash_signatures(values: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """(count, MINHASH_PERMUTATIONS) uint32 minimum hashes of each owner's uint32 shingle values (`owner` sorted);
    an owner without shingles keeps a row of the maximum."""
    signatures = np.full((count, MINHASH_PERMUTATIONS), np.iinfo(np.uint32).max, dtype=np.uint32)
    if not len(values):
        return signatures
    starts = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))
    owners, ends = owner[starts], np.append(starts[1:], len(values))
    first = 0
    while first < len(owners):
        # As many owners as fit in one batch (at least one, however many shingles it has).
        last = max(first + 1, int(np.searchsorted(ends, starts[first] + _MINHASH_BATCH, side="right")))
        low, high = starts[first], ends[last - 1]
        permuted = values[None, low:high] * _MULTIPLIERS[:, None]  # wraps modulo 2^32
        permuted += _OFFSETS[:, None]
        signatures[owners[first:last]] = np.minimum.reduceat(permuted, starts[first:last] - low, axis=1).T
        first = last
    return signatures


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """(records, LSH_BANDS) uint64: a band's two 32-bit minimum hashes side by side, so equal keys mean equal bands."""
    return (signatures[:, 0::ROWS_PER_BAND].astype(np.uint64) << np.uint64(32)) | signatures[:, 1::ROWS_PER_BAND]


def duplicate_text_digest(tokens: list[bytes]) -> bytes | None:
    """128-bit digest of a word sequence: equal digests mean the same words in the same order; None without words."""
    return hashlib.blake2b(b" ".join(tokens), digest_size=16).digest() if tokens else None


@dataclass
class DuplicateFeatures:
    """Per record of a chunk, what finding duplicates across all records needs."""

    digests: list[bytes | None]  # of the words: equal for exact copies
    band_keys: np.ndarray  # (records, LSH_BANDS): equal in some band for likely near copies
    shingles: np.ndarray  # uint32: each record's shingle hashes, one record after the other ...
    shingle_offsets: np.ndarray  # ... record i's from shingle_offsets[i] to shingle_offsets[i + 1], for exact Jaccards

    @classmethod
    def of(
        cls, word_hashes: np.ndarray, starts: np.ndarray, lengths: np.ndarray, digests: list[bytes | None]
    ) -> DuplicateFeatures:
        """From the words of each record (`word_hashes[start : start + length]`) and their digests."""
        shingles, owner = segment_shingles(word_hashes, starts, lengths)
        # 32 well-mixed bits per shingle: MinHash permutes them, and among one record's hundreds of shingles a
        # 32-bit collision is a one-in-ten-million event that would move a Jaccard by one shingle.
        values = (_finalise(shingles) >> np.uint64(32)).astype(np.uint32)
        signatures = minhash_signatures(values, owner, len(lengths))
        return cls(digests, band_keys(signatures), values, np.searchsorted(owner, np.arange(len(lengths) + 1)))

    def distinct_shingles_of(self, record: int) -> np.ndarray:
        """Sorted and distinct: made only for the few records whose exact Jaccard is needed."""
        values = np.sort(self.shingles[self.shingle_offsets[record] : self.shingle_offsets[record + 1]])
        return values[
            np.concatenate([[True], values[1:] != values[:-1]])
        ]  # np.unique costs ten times more on small arrays


def jaccard(left: np.ndarray, right: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct values."""
    if not len(left) or not len(right):
        return 0.0
    found = np.minimum(np.searchsorted(right, left), len(right) - 1)
    shared = int(np.count_nonzero(right[found] == left))
    return shared / (len(left) + len(right) - shared)


# -- per-record flags -------------------------------------------------------------------------------


@dataclass
class _ChunkAnalysis:
    """What the per-record pass finds in a chunk: everything but the duplicate groups, and what finding those needs."""

    flags: list[list[Flag]]
    findings: list[list[TextFindings | None]]  # per text column, per record
    texts: tuple[list[str], list[str], list[str]]  # in TEXT_COLUMNS order
    word_counts: np.ndarray  # (records, 3) in TEXT_COLUMNS order
    duplicates: DuplicateFeatures  # of instruction + response


@dataclass
class _ChunkResult:
    """A chunk's signals as they leave a worker process: plain lists and arrays, the cleaned texts as Arrow strings."""

    flags: list[list[str]]
    reasons: list[list[str]]
    priority: np.ndarray
    citation_markers: np.ndarray
    word_counts: np.ndarray
    cleaned: list[pa.Array]  # per text column: the cleaned text where a rule changed it, else null
    duplicates: DuplicateFeatures


def _chunk_signals(texts: tuple[list[str], list[str], list[str], list[str]], language: str) -> _ChunkResult:
    """The per-record signals of a chunk of records, given as (instructions, contexts, responses, categories)."""
    analysis = _analyse_chunk(texts, language)
    return _ChunkResult(
        flags=[[flag.name for flag in record] for record in analysis.flags],
        reasons=[[f"{flag.name}: {flag.reason}" for flag in record] for record in analysis.flags],
        priority=np.array(
            [sum(FLAG_WEIGHTS[flag.name] for flag in record) for record in analysis.flags], dtype=np.int64
        ),
        citation_markers=np.array(
            [sum(len(found.citation_markers) for found in record if found) for record in zip(*analysis.findings)],
            dtype=np.int64,
        ),
        word_counts=analysis.word_counts,
        cleaned=[
            pa.array(
                [found.cleaned if found and found.cleaned != text else None for found, text in zip(column, originals)],
                type=pa.large_string(),
            )
            for column, originals in zip(analysis.findings, analysis.texts)
        ],  # fmt: skip
        duplicates=analysis.duplicates,
    )


def _analyse_chunk(texts: tuple[list[str], list[str], list[str], list[str]], language: str) -> _ChunkAnalysis:
    instructions, contexts, responses, categories = texts
    count = len(instructions)
    # Per record its instruction's words, then its response's, then its context's: instruction and
    # response side by side make one segment, for duplicates and the language.
    words = _Words.of([text for record in zip(instructions, responses, contexts) for text in record])
    instruction_words, response_words, context_words = words.counts.reshape(-1, 3).T
    starts = words.starts.reshape(-1, 3)

    digests = words.digests(np.arange(0, 3 * count, 3), instruction_words + response_words)
    duplicates = DuplicateFeatures.of(words.hashes, starts[:, 0], instruction_words + response_words, digests)

    response, response_owner = segment_shingles(words.hashes, starts[:, 1], response_words)
    copied_context = np.zeros(count)
    copies_possible = np.flatnonzero(context_words >= 10)
    if len(copies_possible):
        context, context_owner = segment_shingles(
            words.hashes, starts[copies_possible, 2], context_words[copies_possible]
        )
        copied_context[copies_possible] = _coverage(
            context, copies_possible[context_owner], response, response_owner, count
        )[copies_possible]
    # A response that restates the question and then answers it adds words; a copy adds (almost) none.
    copied_instruction = np.zeros(count)
    restates = np.flatnonzero((instruction_words >= 4) & (response_words <= instruction_words + 2))
    if len(restates):
        instruction, instruction_owner = segment_shingles(
            words.hashes, starts[restates, 0], instruction_words[restates]
        )
        copied_instruction[restates] = _coverage(
            instruction, restates[instruction_owner], response, response_owner, count
        )[restates]

    language_words = instruction_words + response_words
    stopword_counts = np.zeros((count, len(_LANGUAGES)), dtype=np.int64)
    if language in LANGUAGE_STOPWORDS:
        positions, word_owner, _ = _segment_positions(starts[:, 0], language_words)
        bits = words.stopword_bits[positions]
        for position in range(len(_LANGUAGES)):
            stopword_counts[:, position] = np.bincount(word_owner[(bits >> position) & 1 == 1], minlength=count)

    findings = [[text_findings(text) for text in column] for column in (instructions, contexts, responses)]
    found = np.array([any(record) for record in zip(*findings)], dtype=bool)
    # Records that may carry a flag; every other record has none, and only these go through _record_flags.
    minimum = np.array([MIN_RESPONSE_WORDS.get(category, 1) for category in categories])
    has_context = np.array([bool(context.strip()) for context in contexts], dtype=bool)
    needs_context = np.array([category in CATEGORIES_NEEDING_CONTEXT for category in categories], dtype=bool)
    without_context = np.array([category in CATEGORIES_WITHOUT_CONTEXT for category in categories], dtype=bool)
    may_be_flagged = (
        found
        | (copied_context >= COPY_COVERAGE)
        | (copied_instruction >= COPY_COVERAGE)
        | (response_words < minimum)
        | (needs_context & ~has_context)
        | (without_context & has_context)
    )
    if language in LANGUAGE_STOPWORDS:
        may_be_flagged |= (language_words >= MIN_WORDS_FOR_LANGUAGE) & _language_suspects(
            language_words, stopword_counts, language
        )
        may_be_flagged |= ~np.array(
            [instruction.isascii() and response.isascii() for instruction, response in zip(instructions, responses)]
        )

    flags: list[list[Flag]] = [[] for _ in range(count)]
    for record in np.flatnonzero(may_be_flagged).tolist():
        flags[record] = _record_flags(
            [column[record] for column in findings],
            categories[record],
            (instructions[record], contexts[record], responses[record]),
            (int(instruction_words[record]), int(response_words[record])),
            float(copied_context[record]),
            float(copied_instruction[record]),
            stopword_counts[record],
            language,
        )
    return _ChunkAnalysis(
        flags=flags,
        findings=findings,
        texts=(instructions, contexts, responses),
        word_counts=np.column_stack([instruction_words, context_words, response_words]),
        duplicates=duplicates,
    )


def _language_suspects(word_counts: np.ndarray, stopword_counts: np.ndarray, language: str) -> np.ndarray:
    """Where the function words alone give language_verdict something to say (it decides, with the Latin share)."""
    shares = stopword_counts / np.maximum(word_counts, 1)[:, None]
    own = shares[:, _LANGUAGES.index(language)]
    others = np.delete(shares, _LANGUAGES.index(language), axis=1)
    other_language = ((others >= MIN_OTHER_STOPWORD_SHARE) & (others > own[:, None])).any(axis=1)
    return other_language | ((word_counts >= MIN_WORDS_FOR_MISSING_STOPWORDS) & (own < MIN_STOPWORD_SHARE))


def _record_flags(
    findings: list[TextFindings | None],
    category: str,
    texts: tuple[str, str, str],
    word_counts: tuple[int, int],
    copied_context: float,
    copied_instruction: float,
    stopword_counts: np.ndarray,
    language: str,
) -> list[Flag]:
    instruction, context, response = texts
    instruction_words, response_words = word_counts
    flags = []

    markers = {
        column: found.citation_markers
        for column, found in zip(TEXT_COLUMNS, findings)
        if found and found.citation_markers
    }
    if markers:
        where = "; ".join(
            f"{column}: {len(items)} ({' '.join(items[:4])}{' ...' if len(items) > 4 else ''})"
            for column, items in markers.items()
        )
        flags.append(Flag("citation_markers", f"Wikipedia citation markers, remove them: {where}"))
    damaged = [column for column, found in zip(TEXT_COLUMNS, findings) if found and found.whitespace_damaged]
    if damaged:
        flags.append(Flag("whitespace", f"stray whitespace or invisible characters in {', '.join(damaged)}"))
    broken = {
        column: found.mojibake_runs for column, found in zip(TEXT_COLUMNS, findings) if found and found.mojibake_runs
    }
    if broken:
        where = "; ".join(f"{column}: {' '.join(repr(run) for run in runs[:3])}" for column, runs in broken.items())
        flags.append(Flag("mojibake", f"encoding damage (UTF-8 read as Windows-1252, or U+FFFD): {where}"))

    if copied_context >= COPY_COVERAGE:
        flags.append(
            Flag(
                "response_copies_context",
                f"the response repeats {copied_context:.0%} of the context verbatim instead of answering",
            )
        )
    if copied_instruction >= COPY_COVERAGE:
        flags.append(Flag("response_copies_instruction", "the response mostly repeats the instruction"))

    minimum = MIN_RESPONSE_WORDS.get(category, 1)
    if response_words == 0:
        flags.append(Flag("short_response", "the response is empty"))
    elif response_words < minimum:
        flags.append(
            Flag("short_response", f"{response_words} word(s): short for {category} (expected at least {minimum})")
        )

    if category in CATEGORIES_NEEDING_CONTEXT and not context.strip():
        flags.append(Flag("missing_context", f"{category} is answered from a reference text, but the context is empty"))
    if category in CATEGORIES_WITHOUT_CONTEXT and context.strip():
        flags.append(
            Flag("unexpected_context", f"{category} is answered without a reference text, but a context is given")
        )

    if language in LANGUAGE_STOPWORDS:
        verdict = language_verdict(
            instruction_words + response_words, stopword_counts, f"{instruction} {response}", language
        )
        if verdict:
            flags.append(Flag("other_language", f"instruction and response look not written in {language}: {verdict}"))
    return flags


_LETTER = re.compile(r"[^\W\d_]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]")


# Every byte but the ASCII letters: deleting them leaves the ASCII letters to count.
_NOT_ASCII_LETTER = bytes(byte for byte in range(256) if not (65 <= byte <= 90 or 97 <= byte <= 122))


def _surely_latin(text: str) -> bool:
    """True when the share of Latin letters is at least MIN_LATIN_SHARE even if every non-ASCII character were a non-Latin
    letter.

    Each non-ASCII character takes at least two bytes in UTF-8, so the extra bytes bound their number.
    Two byte-level counts, against two regular-expression passes over the text for the exact share.
    """
    encoded = text.encode("utf-8", "surrogatepass")
    ascii_letters = len(encoded.translate(None, _NOT_ASCII_LETTER))
    others_at_most = len(encoded) - len(text)
    return ascii_letters >= MIN_LATIN_SHARE * (ascii_letters + others_at_most)


def language_verdict(word_count: int, stopword_counts, text: str, language: str) -> str | None:
    """Why the text looks not written in `language` (one of LANGUAGE_STOPWORDS), or None.

    Texts under 8 words and 20 letters pass; the function words are judged from 8 words on.

    `stopword_counts` holds, per language of LANGUAGE_STOPWORDS in order, how many of the words are its function words.
    """
    if not _surely_latin(text):
        letters = len(_LETTER.findall(text))
        latin = len(_LATIN_LETTER.findall(text)) / letters if letters else 1.0
        # Every language with a stopword list here is written in Latin letters. Chinese, Japanese or Thai
        # put no spaces between words: a sentence is one or two "words", so the letters count too.
        if latin < MIN_LATIN_SHARE and (word_count >= MIN_WORDS_FOR_LANGUAGE or letters >= MIN_LETTERS_FOR_SCRIPT):
            return f"only {latin:.0%} of the letters are Latin"
    if word_count < MIN_WORDS_FOR_LANGUAGE:
        return None
    shares = dict(zip(_LANGUAGES, (int(found) / word_count for found in stopword_counts)))
    own = shares[language]
    for other, share in shares.items():
        if other != language and share >= MIN_OTHER_STOPWORD_SHARE and share > own:
            return f"{share:.0%} of the words are common {other} words against {own:.0%} common {language} ones"
    if word_count >= MIN_WORDS_FOR_MISSING_STOPWORDS and own < MIN_STOPWORD_SHARE:
        return f"only {own:.0%} of {word_count} words are common {language} words"
    return None


def record_flags(record: dict, language: str = "en") -> list[Flag]:
    """The flags of one record that need no other record (duplicates are found across the dataset)."""
    texts = tuple([record.get(column) or ""] for column in TEXT_COLUMNS)
    return _analyse_chunk((*texts, [record.get("category") or ""]), language).flags[0]


# -- duplicates across the dataset ------------------------------------------------------------------


def lsh_candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """(pairs, 2) rows that agree on all rows of at least one band: in each bucket, its first row with each other row.

    Linear in the bucket sizes, however large a bucket gets; each pair once, sorted.
    """
    pair_keys = []
    for band in range(keys.shape[1]):
        column = np.ascontiguousarray(keys[:, band])
        codes, _ = pd.factorize(column)  # a hash table: no sort of every row
        shared = np.flatnonzero(np.bincount(codes)[codes] > 1)
        if not len(shared):
            continue
        shared = shared[
            np.argsort(codes[shared], kind="stable")
        ]  # by bucket; rows of one bucket stay in ascending order
        bucket_start = np.concatenate([[True], codes[shared][1:] != codes[shared][:-1]])
        head = shared[np.maximum.accumulate(np.where(bucket_start, np.arange(len(shared)), 0))]
        pair_keys.append(head[~bucket_start] * len(keys) + shared[~bucket_start])
    if not pair_keys:
        return np.empty((0, 2), dtype=np.int64)
    unique = np.unique(np.concatenate(pair_keys))
    return np.column_stack([unique // len(keys), unique % len(keys)])


def estimated_jaccard(keys: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Per pair of rows, the share of MinHash permutations on which their signatures agree (from the band keys)."""
    estimates = np.empty(len(pairs))
    for start in range(0, len(pairs), 100_000):  # bounded memory: pairs x bands x 8 bytes per step
        left, right = keys[pairs[start : start + 100_000, 0]], keys[pairs[start : start + 100_000, 1]]
        agree = left ^ right
        same_high = (agree >> np.uint64(32)) == 0
        same_low = (agree & np.uint64(0xFFFFFFFF)) == 0
        estimates[start : start + len(left)] = (same_high.sum(axis=1) + same_low.sum(axis=1)) / MINHASH_PERMUTATIONS
    return estimates


def _group_duplicates(
    record_ids: list[str], digests: list, keys: np.ndarray, shingles_of: Callable[[int], np.ndarray], threshold: float
) -> pd.DataFrame:
    """Duplicate groups from each record's word digest (exact copies) and LSH band keys (near copies).

    Exact copies are grouped by digest first, and only one record per group (its first) takes part in
    the near-duplicate search, so thousands of copies of one record cost what one does. A candidate
    pair joins two groups when the exact Jaccard similarity of their shingles (`shingles_of(row)`,
    sorted and distinct) reaches `threshold`.
    """
    count = len(record_ids)
    exact_group, _ = pd.factorize(pd.Series(digests, dtype=object))  # -1: a record without words
    groups = int(exact_group.max()) + 1 if count else 0
    has_words = np.flatnonzero(exact_group >= 0)
    # pd.factorize numbers groups in order of first appearance, so the first record of each is in group order.
    representative = has_words[np.unique(exact_group[has_words], return_index=True)[1]]
    exact_size = np.bincount(exact_group[has_words], minlength=groups)
    best = np.where(exact_size > 1, 1.0, 0.0)  # best similarity with another member, per exact group

    parent = list(range(groups))

    def root(group: int) -> int:
        while parent[group] != group:
            parent[group] = parent[parent[group]]
            group = parent[group]
        return group

    pairs = lsh_candidate_pairs(keys[representative]) if groups else np.empty((0, 2), dtype=np.int64)
    estimates = estimated_jaccard(keys[representative], pairs)
    # The likeliest pairs first: once a group has formed, the pairs inside it need no exact Jaccard.
    order = np.argsort(-estimates, kind="stable")
    for left, right in pairs[order][estimates[order] >= MIN_ESTIMATED_JACCARD].tolist():
        left_root, right_root = root(left), root(right)
        if left_root == right_root and best[left] > 0 and best[right] > 0:
            continue  # already in one group, and both have a similarity to show
        similarity = jaccard(shingles_of(representative[left]), shingles_of(representative[right]))
        if similarity >= threshold:
            parent[max(left_root, right_root)] = min(left_root, right_root)
            best[left] = max(best[left], similarity)
            best[right] = max(best[right], similarity)

    group_root = np.array([root(group) for group in range(groups)], dtype=np.int64)
    record_root = np.full(count, -1, dtype=np.int64)
    record_root[has_words] = group_root[exact_group[has_words]]
    sizes = np.zeros(count, dtype=np.int64)
    sizes[has_words] = np.bincount(record_root[has_words], minlength=groups)[record_root[has_words]]
    grouped = np.flatnonzero(sizes > 1)
    smallest: dict[int, str] = {}
    for index in grouped.tolist():
        group, record_id = int(record_root[index]), record_ids[index]
        if group not in smallest or _id_key(record_id) < _id_key(smallest[group]):
            smallest[group] = record_id
    group_ids = np.full(count, "", dtype=object)
    group_ids[grouped] = [smallest[int(group)] for group in record_root[grouped]]
    similarity = np.zeros(count)
    similarity[grouped] = best[exact_group[grouped]]
    kind = np.full(count, "", dtype=object)
    kind[grouped] = np.where(exact_size[exact_group[grouped]] > 1, "exact", "near")
    return pd.DataFrame(
        {
            "id": pd.Series(record_ids, dtype=str),
            "duplicate_group": pd.Series(group_ids, dtype=str),
            "duplicate_group_size": np.where(sizes > 1, sizes, 0),
            "duplicate_kind": pd.Series(kind, dtype=str),
            "duplicate_similarity": similarity.round(3),
        }
    )


def _id_key(record_id: str) -> tuple:
    return (0, int(record_id), "") if record_id.isdigit() else (1, 0, record_id)


def duplicate_groups(
    record_ids: list[str], texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD
) -> pd.DataFrame:
    """Per record: `duplicate_group` (the smallest id in its group, "" if alone), `duplicate_group_size`,
    `duplicate_kind` (exact / near) and `duplicate_similarity` (best Jaccard with another member it was compared with).
    """
    features = []
    for start in range(0, len(texts), CHUNK_RECORDS):
        words = _Words.of(texts[start : start + CHUNK_RECORDS])
        digests = words.digests(np.arange(len(words.counts)), words.counts)
        features.append(DuplicateFeatures.of(words.hashes, words.starts, words.counts, digests))
    return _group_duplicates_of_chunks([str(record_id) for record_id in record_ids], features, threshold)


def _group_duplicates_of_chunks(
    record_ids: list[str], features: list[DuplicateFeatures], threshold: float
) -> pd.DataFrame:
    """_group_duplicates over the features of consecutive chunks of CHUNK_RECORDS records."""
    keys = (
        np.concatenate([chunk.band_keys for chunk in features])
        if features
        else np.empty((0, LSH_BANDS), dtype=np.uint64)
    )
    digests = [digest for chunk in features for digest in chunk.digests]
    return _group_duplicates(
        record_ids,
        digests,
        keys,
        lambda row: features[row // CHUNK_RECORDS].distinct_shingles_of(row % CHUNK_RECORDS),
        threshold,
    )


# -- the whole dataset ------------------------------------------------------------------------------

SIGNAL_COLUMNS = [
    "id", "flags", "reasons", "priority",
    "duplicate_group", "duplicate_group_size",
    "citation_markers", "instruction_words", "context_words", "response_words",
    "clean_instruction", "clean_context", "clean_response", "fixable",
]  # fmt: skip


def compute_quality_signals(records: pd.DataFrame, language: str = "en", workers: int | None = None) -> pd.DataFrame:
    """One row per record: flag names, reasons, review priority, duplicate group, lengths and the cleaned texts.

    `clean_instruction`, `clean_context` and `clean_response` hold the text with the safe rule fixes
    where a rule changed it, and are null where it did not (most records: a full copy of every
    text would double the memory the signals take). `fixable` is True when a rule changed any of them.
    The per-record work runs in chunks of CHUNK_RECORDS, on `workers` processes (default: every
    core from MIN_RECORDS_FOR_WORKERS records on, else this process); the result is the same either way.
    """
    # The findings, flags, reasons and cleaned texts are many objects without cycles, which reference counting frees;
    # the collector's full passes over them and over a Dagster run's whole heap found nothing and took 0.4-0.5 s of a
    # 15,000-record plan (timed with gc.callbacks).
    with collector_paused():
        return _quality_signals(records, language, workers)


def _quality_signals(records: pd.DataFrame, language: str, workers: int | None) -> pd.DataFrame:
    count = len(records)
    columns = {
        column: (records[column].fillna("") if column in records else pd.Series([""] * count)).reset_index(drop=True)
        for column in (*TEXT_COLUMNS, "category")
    }
    chunks = (
        tuple(columns[column].iloc[start : start + CHUNK_RECORDS].tolist() for column in (*TEXT_COLUMNS, "category"))
        for start in range(0, count, CHUNK_RECORDS)
    )
    flags: list[list[str]] = []
    reasons: list[list[str]] = []
    duplicate_features: list[DuplicateFeatures] = []
    cleaned: dict[str, list[pa.Array]] = {column: [] for column in TEXT_COLUMNS}
    priority = np.empty(count, dtype=np.int64)
    markers = np.empty(count, dtype=np.int64)
    word_counts = np.empty((count, len(TEXT_COLUMNS)), dtype=np.int64)
    start = 0
    for result in _map_chunks(partial(_chunk_signals, language=language), chunks, _worker_count(workers, count)):
        end = start + len(result.flags)
        flags += result.flags
        reasons += result.reasons
        duplicate_features.append(result.duplicates)
        priority[start:end], markers[start:end], word_counts[start:end] = (
            result.priority,
            result.citation_markers,
            result.word_counts,
        )
        for column, array in zip(TEXT_COLUMNS, result.cleaned):
            cleaned[column].append(array)
        start = end

    record_ids = records["id"].astype(str).tolist()
    duplicates = _group_duplicates_of_chunks(record_ids, duplicate_features, NEAR_DUPLICATE_JACCARD)
    del duplicate_features
    sizes, kinds, groups, similarities = (duplicates[column].to_numpy() for column in
                                          ("duplicate_group_size", "duplicate_kind", "duplicate_group", "duplicate_similarity"))  # fmt: skip
    for index in np.flatnonzero(sizes > 0).tolist():
        reason = f"{kinds[index]} duplicate of {sizes[index] - 1} other record(s) in group {groups[index]}"
        if kinds[index] != "exact":
            reason += f" (word overlap {similarities[index]:.0%})"
        flags[index].append("duplicate")
        reasons[index].append(f"duplicate: {reason}")
        priority[index] += FLAG_WEIGHTS["duplicate"]

    clean = {column: pa.chunked_array(arrays, type=pa.large_string()).to_pandas() for column, arrays in cleaned.items()}
    return pd.DataFrame(
        {
            "id": pd.Series(record_ids, dtype=str),
            "flags": flags,
            "reasons": reasons,
            "priority": priority,
            "duplicate_group": duplicates["duplicate_group"],
            "duplicate_group_size": duplicates["duplicate_group_size"],
            "citation_markers": markers,
            **{f"{column}_words": word_counts[:, position] for position, column in enumerate(TEXT_COLUMNS)},
            **{f"clean_{column}": clean[column] for column in TEXT_COLUMNS},
            "fixable": np.logical_or.reduce([clean[column].notna().to_numpy() for column in TEXT_COLUMNS]),
        },
        columns=SIGNAL_COLUMNS,
    )


def _worker_count(workers: int | None, records: int) -> int:
    if workers is not None:
        return max(1, workers)
    return len(os.sched_getaffinity(0)) if records >= MIN_RECORDS_FOR_WORKERS else 1


def _map_chunks(function: Callable, chunks: Iterable, workers: int) -> Iterator:
    """`function` over the chunks, results in order; with several workers, at most two chunks per worker in flight (bounded
    memory)."""
    if workers <= 1:
        yield from map(function, chunks)
        return
    # spawn: a fresh interpreter per worker; forking a process that runs threads (a Dagster step) can deadlock.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(function, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


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
