"""The assets, one module per step, in pipeline order: source → assignments → shards → feedback → statistics → curated."""
