"""Bulk jobs: what they return, the engine that runs them, and where their records come from.

``results`` holds the public types (``BulkResult``, ``BulkFailure``,
``BulkProgress``, the interruption errors) and the records operations the
engine is given; ``engine`` streams items in batches and accounts for every
one; ``batches`` is one request's worth of items; ``versions`` makes a job's
one new dataset version; ``changes`` encodes tag operations and mixed jobs;
``events`` pushes an experiment's spans and metrics;
``csvsource`` reads records from CSV and ``upload`` sends a CSV file in one
request. This package sits above the transport and the wire format, below
the resources.
"""
