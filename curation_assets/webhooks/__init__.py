"""Argilla webhooks into Dagster: a receiver that verifies deliveries and leaves marks the sensors read."""
