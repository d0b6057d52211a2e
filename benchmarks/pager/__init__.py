"""CPU per record of a large pull through the pager (``run.py``)."""
