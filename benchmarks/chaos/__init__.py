"""A million records through ``update_many`` against a misbehaving fake (``run.py``)."""
