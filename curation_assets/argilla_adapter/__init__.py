"""The Argilla adapter: everything that knows Argilla's API, behind `ArgillaClient`.

- client.py: the owner's client (users, workspaces, datasets, records, progress) and `ArgillaDataset`.
- rest.py, transport.py, errors.py: the request plumbing every caller shares: retries with backoff, typed errors.
- dataset_settings.py, guidelines.md: the curation dataset's design (fields, questions, metadata, guidelines).
- mapping.py: our record frames to Argilla records, and raw records back to feedback rows.
- feedback_cache.py: the last collected feedback per dataset, so a refresh reads only what changed.
"""
