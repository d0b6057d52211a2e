"""``update_many`` through the records PATCH and through ``batch_update`` (``run.py``)."""
