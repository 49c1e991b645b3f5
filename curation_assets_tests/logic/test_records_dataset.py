"""The curated records as a Hugging Face dataset: what `Dataset.from_pandas` saves, with a fingerprint taken from the
table's buffers instead of a pickle of the whole table."""

import json

import datasets
import pandas as pd
import pyarrow as pa
import pytest

from curation_assets.defs.publishing import records_dataset, table_digest


def curated_frame(rows: int = 50) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [str(number) for number in range(rows)],
            "category": ["open_qa"] * rows,
            "instruction": [f"Question {number} ünï 🧪" for number in range(rows)],
            "context": ["" if number % 2 else f"context {number}" for number in range(rows)],
            "response": [f"Answer {number}" * (number % 5 + 1) for number in range(rows)],
            "provenance": ["human" if number % 3 else "original" for number in range(rows)],
            "annotator": [("ana", "bruno")[number % 2] for number in range(rows)],
        }
    )


def saved(dataset: datasets.Dataset, folder) -> dict:
    """What save_to_disk wrote: every file's bytes, and state.json without its fingerprint."""
    dataset.save_to_disk(str(folder))
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    state = json.loads(files.pop("state.json"))
    return {"files": files, "state": state, "fingerprint": state.pop("_fingerprint")}


@pytest.mark.parametrize("rows", [0, 1, 50])
def test_saves_what_from_pandas_saves_but_the_fingerprint(tmp_path, rows):
    curated = curated_frame(rows)
    ours = saved(records_dataset(curated), tmp_path / "ours")
    theirs = saved(datasets.Dataset.from_pandas(curated, preserve_index=False), tmp_path / "theirs")
    assert ours["files"] == theirs["files"] and ours["state"] == theirs["state"]
    assert ours["fingerprint"] == records_dataset(curated)._fingerprint
    if rows:  # datasets cannot load a saved dataset of no rows (no shard to read), however it was made
        assert datasets.load_from_disk(str(tmp_path / "ours")).to_pandas().equals(curated)


def test_the_fingerprint_follows_the_records():
    curated = curated_frame()
    fingerprint = records_dataset(curated)._fingerprint
    assert records_dataset(curated.copy(deep=True))._fingerprint == fingerprint, "equal records, one fingerprint"
    edited = curated.copy()
    edited.loc[7, "response"] = "Answer 7."
    renamed = curated.rename(columns={"annotator": "reviewer"})
    fewer = curated.iloc[:-1]
    fingerprints = {records_dataset(frame)._fingerprint for frame in (edited, renamed, fewer)}
    assert len(fingerprints) == 3 and fingerprint not in fingerprints
    datasets.fingerprint.validate_fingerprint(fingerprint)  # usable as a cache file's name


def test_slices_of_one_array_are_told_apart():
    """Two slices share every buffer of their parent: the digest reads their offsets too."""
    texts = pa.array(["a", "b", "c", "d"])
    first, last = pa.table({"text": texts.slice(0, 2)}), pa.table({"text": texts.slice(2, 2)})
    assert first.column(0).chunks[0].buffers()[2] is not None
    assert table_digest(first) != table_digest(last)
