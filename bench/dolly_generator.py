"""Dolly-shaped records at any size, drawn like the real excerpt shipped in curation_assets/data/.

    python bench/dolly_generator.py --records 100000 --out /tmp/dolly-100k.parquet

Each generated row copies the category of a real row picked at random and whether its
context is empty; its field lengths are the real row's lengths times a log-normal factor,
so the long tail of the real data (contexts and responses of several thousand characters)
is kept and stretched. The text is cut from a shuffled stream of the excerpt's own words; the
stream grows with the size (at least a quarter of the characters drawn from it), so two records
share a stretch of text as rarely at a million rows as at ten thousand. With a fixed stream the
near-duplicates grew with the square of the size (2.3 candidate pairs per record at 100k, 0.7 at
20k), which no real dataset does. Up to about 15,000 rows the stream and the rows are what they were.
Vectorised enough to make a million rows in a few seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from curation_assets.defs.source_loading import load_shipped_dolly_excerpt

LENGTH_SPREAD = 0.5  # sigma of the log-normal factor applied to each real length
LONGEST_TEXT = 30_000  # characters; the real Dolly 15k has responses of up to ~26k
CORPUS_CHARACTERS = 4_000_000  # the smallest stream
STREAM_COVERAGE = 4  # characters drawn per stream character, at most (on average, from the real lengths)


def _word_stream(sample: pd.DataFrame, randomness: np.random.Generator, characters: int) -> str:
    words = np.array(" ".join(sample[["instruction", "context", "response"]].to_numpy().ravel()).split())
    stream = []
    length = 0
    while length < characters:
        chunk = " ".join(randomness.permutation(words))
        stream.append(chunk)
        length += len(chunk) + 1
    return " ".join(stream)


def dolly_shaped_frame(count: int, seed: int = 0) -> pd.DataFrame:
    """`count` rows with columns id, instruction, context, response, category (ids "0".."count-1")."""
    sample = load_shipped_dolly_excerpt()
    randomness = np.random.default_rng(seed)
    # Expected characters of the rows: the real lengths times the log-normal factor's mean, exp(sigma^2 / 2).
    expected = (
        count * sample[["instruction", "context", "response"]].apply(lambda column: column.str.len()).sum(axis=1).mean()
    )
    expected *= np.exp(LENGTH_SPREAD**2 / 2)
    stream = _word_stream(sample, randomness, max(CORPUS_CHARACTERS, int(expected / STREAM_COVERAGE)))
    models = randomness.integers(0, len(sample), size=count)

    def texts(column: str, minimum: int) -> list[str]:
        real_lengths = sample[column].str.len().to_numpy()[models]
        lengths = np.maximum(minimum, (real_lengths * randomness.lognormal(0.0, LENGTH_SPREAD, size=count)).astype(int))
        lengths = np.where(real_lengths == 0, 0, np.minimum(lengths, LONGEST_TEXT))
        starts = randomness.integers(0, len(stream) - lengths.max() - 1, size=count)
        return [
            (stream[start : start + length].strip() or "text") if length else ""
            for start, length in zip(starts, lengths)
        ]

    return pd.DataFrame(
        {
            "id": [str(index) for index in range(count)],
            "instruction": texts("instruction", 8),
            "context": texts("context", 8),
            "response": texts("response", 2),
            "category": sample["category"].to_numpy()[models],
        }
    )


def dolly_shaped_rows(count: int, seed: int = 0) -> list[dict]:
    return dolly_shaped_frame(count, seed).to_dict("records")


def write_source_file(count: int, path: Path, seed: int = 0) -> Path:
    """A local source file the pipeline's `raw_dolly` can load (parquet, jsonl or csv by suffix)."""
    frame = dolly_shaped_frame(count, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help=".parquet, .jsonl or .csv")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    path = write_source_file(arguments.records, arguments.out, arguments.seed)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else None
    print(f"wrote {arguments.records} rows to {path}")
    if frame is not None:
        print(frame[["instruction", "context", "response"]].apply(lambda column: column.str.len()).describe().round(0))


if __name__ == "__main__":
    main()
