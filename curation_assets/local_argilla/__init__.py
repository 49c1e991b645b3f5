"""The embedded Argilla: the real argilla-server 2.8 on SQLite, reached by the pipeline only over HTTP."""
