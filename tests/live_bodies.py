"""Real answers of the live API, from ``shared/API-REFERENCE.md`` sections 2.1 to 2.4.

Copied byte for byte from the recordings quoted there (ids are elided with
"…" in the reference, and kept so). Two are completed from the reference's
own words: the experiment's ``metadata`` is the one its request sent, and the
records list is the batch-update record "minus version".
"""

from __future__ import annotations

# POST /api/unstable/llm-obs/v1/projects (2.1): no ``description``, an extra ``author``.
PROJECT_CREATE = (
    '{"data":{"id":"c4b49fb5-…","type":"projects","attributes":{"author":{"id":"de473b30-'
    '…"},"created_at":"2025-10-16T21:04:07.493104Z","name":"new-different-project","updat'
    'ed_at":"2025-10-16T21:04:07.493104Z"}}}'
).encode()

# POST .../v1/experiments (2.4): ``ensure_unique`` moved the name to ``experiment``.
EXPERIMENT_CREATE = (
    '{"data":{"id":"9d015796-…","type":"experiments","attributes":{"author":{"id":"422c9d'
    '15-…"},"config":{},"created_at":"2026-03-26T20:10:24.312240316Z","dataset_id":"056ba'
    '26f-…","dataset_version":1,"description":"","experiment":"test_experiment","metadata'
    '":{"tags":["ddtrace.version:1.2.3","project_id:c4b49fb5-…"]},"name":"test_experiment'
    '-1774555824312","project_id":"c4b49fb5-…","run_count":1,"updated_at":"2026-03-26T20:'
    '10:24.31224039Z"}}}'
).encode()

# POST .../datasets/{dataset_id}/batch_update (2.3): ``data`` is a list of record resources.
BATCH_UPDATE = (
    '{"data":[{"id":"record-id-1","type":"datasets","attributes":{"author":{"id":"422c9d1'
    '5-…"},"canonical_id":"24671c08-…","created_at":"2026-03-26T20:01:34.051443473Z","dat'
    'aset_id":"09ac049e-…","expected_output":{"answer":"Boston"},"input":{"prompt":"What '
    'is the capital of Massachusetts?"},"tags":["priority:high","team:ml"],"updated_at":"'
    '2026-03-26T20:01:34.051443473Z","version":1}}]}'
).encode()

# GET .../datasets/{dataset_id}/records?filter[tags]=... (2.3): the same record, no ``version``.
RECORDS_LIST = BATCH_UPDATE.replace(b',"version":1', b"")[:-1] + b',"meta":{"after":""}}'

# The request of BATCH_UPDATE (2.3), as ddtrace's ``dataset_batch_update`` sent it: the three
# arrays, then ``deduplicate`` and ``create_new_version``.
BATCH_UPDATE_REQUEST = (
    '{"data": {"type": "datasets", "id": "09ac049e-…", "attributes": {"insert_records": [{"input'
    '": {"prompt": "What is the capital of Massachusetts?"}, "expected_output": {"answer": "Bos'
    'ton"}, "metadata": null, "id": "record-id-1", "tags": ["team:ml", "priority:high"]}], "upd'
    'ate_records": [], "delete_records": [], "deduplicate": true, "create_new_version": true}}}'
).encode()
