"""JSON Lines written in slices: the same bytes as pandas writes at once."""

import pandas as pd

from curation_assets.defs.jsonl import write_jsonl


def test_slices_write_the_bytes_pandas_writes_at_once(tmp_path):
    frame = pd.DataFrame(
        {
            "id": [str(index) for index in range(25)],
            "flags": [["citation_markers", "whitespace"] if index % 3 else [] for index in range(25)],
            "text": ["café “quoted” / slash\nline" if index % 2 else "" for index in range(25)],
            "priority": list(range(25)),
            "fixable": [index % 2 == 0 for index in range(25)],
        }
    )
    frame.to_json(tmp_path / "whole.jsonl", orient="records", lines=True, force_ascii=False)
    write_jsonl(frame, tmp_path / "sliced.jsonl", rows_per_slice=7, force_ascii=False)
    assert (tmp_path / "sliced.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()
    frame.iloc[:0].to_json(tmp_path / "whole_empty.jsonl", orient="records", lines=True)
    write_jsonl(frame.iloc[:0], tmp_path / "sliced_empty.jsonl")
    assert (tmp_path / "sliced_empty.jsonl").read_bytes() == (tmp_path / "whole_empty.jsonl").read_bytes()
