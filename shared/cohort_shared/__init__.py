"""What every Cohort Import service shares: schemas, topic names, settings, Kafka and Redis helpers."""
