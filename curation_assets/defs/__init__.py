"""The Dagster side: declared curation projects (projects/<name>/defs.yaml) and the component that builds each.

Dagster loads this folder (`dg.load_from_defs_folder`): every `projects/<name>/defs.yaml` is one
`CurationProject` (project.py), which `build.py` turns into its assets (assets/, in pipeline
order), checks, jobs and sensor.
"""
