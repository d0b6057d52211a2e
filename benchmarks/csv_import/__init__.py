"""CSV import speed: ``create_from_csv`` (batches) against ``upload_csv`` (``run.py``)."""
