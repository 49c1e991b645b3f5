"""`curation-quickstart` and what it drives: declaring a project, the embedded Argilla, Dagster, simulated annotators.

- cli.py: the command (start Argilla, materialize each project once, then `dagster dev` or exit).
- declare.py: writes or updates a project's defs.yaml from the command's flags, refusing a silent source switch.
- console.py: what the command prints: one line per step with its counts.
- simulation.py, annotator_client.py: simulated annotators working over the web UI's REST calls (demos, tests).
"""

import os

# Progress bars (the argilla client's per push, datasets' per save) are noise next to one line per step.
# tqdm reads this when first imported, so it is set here, before the command imports anything else.
os.environ.setdefault("TQDM_DISABLE", "1")
