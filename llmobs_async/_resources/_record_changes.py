"""Bulk jobs of ``client.records`` through ``batch_update``: tags, mixed changes, and the runner.

:class:`RecordChanges` is the base of :class:`~llmobs_async._resources.records.Records`
(kept apart so that each module stays readable): tag operations on many
records, and a job of inserts, updates and deletes together. Every job makes
one new dataset version.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, Unpack

import attrs

from .. import _routes
from .._bulk import changes as _changes
from .._bulk.engine import BulkJob
from .._bulk.operations import (
    BulkOperation,
    RecordsOperation,
    batch_update,
    check_batch_options,
    check_source,
    given_id,
)
from .._bulk.results import BulkResult, IdSource, ProgressCallback
from .._bulk.versions import OneVersion
from .._changemodels import RecordDelete, TagOperations, check_tags
from .._options import RequestOptions
from .._transport import Transport
from ..errors import LLMObsError, ValidationError
from ..models import RecordCreate, RecordUpdate
from ._base import BULK_BODY, Resource
from .datasets import Datasets

__all__ = ["ChangeSource", "RecordChanges", "batch_operation", "run_job"]

Change: TypeAlias = RecordCreate | RecordUpdate | RecordDelete | Mapping[str, Any]
ChangeSource: TypeAlias = Iterable[Change] | AsyncIterable[Change]


class RecordChanges(Resource):
    """Tag operations and mixed jobs on a dataset's records (see ``Records``)."""

    __slots__ = ()

    async def add_tags(
        self,
        project_id: str,
        dataset_id: str,
        record_ids: str | IdSource,
        tags: Sequence[str],
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Add ``tags`` (``"key:value"``) to every record in ``record_ids``: one dataset version.

        ``record_ids`` is one id or any iterable or async iterable of ids, read
        lazily and sent as ``batch_update`` ``update_records`` items with
        ``tag_operations`` (ddtrace's ``Dataset.add_tags``); tags a record
        already has are kept. Batching, isolation of refused records and the
        account (``applied + failed_count == submitted``) are
        :meth:`update_many`'s.
        """
        if not tags:
            raise ValidationError("tags", "must not be empty")
        check_tags(tags, "tags", key_value=True)
        return await self._tag_job(
            project_id,
            dataset_id,
            record_ids,
            TagOperations(add=tuple(tags)),
            "add_tags",
            options,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )

    async def remove_tags(
        self,
        project_id: str,
        dataset_id: str,
        record_ids: str | IdSource,
        tags: Sequence[str],
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Remove ``tags`` from every record in ``record_ids``: one dataset version.

        A tag a record does not carry is ignored. Otherwise as :meth:`add_tags`.
        """
        if not tags:
            raise ValidationError("tags", "must not be empty")
        check_tags(tags, "tags", key_value=False)
        return await self._tag_job(
            project_id,
            dataset_id,
            record_ids,
            TagOperations(remove=tuple(tags)),
            "remove_tags",
            options,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )

    async def replace_tags(
        self,
        project_id: str,
        dataset_id: str,
        record_ids: str | IdSource,
        tags: Sequence[str],
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Make ``tags`` the only tags of every record in ``record_ids``: one dataset version.

        Sent as the wire's ``set`` (ddtrace's ``Dataset.replace_tags``);
        ``tags=[]`` removes every tag. Otherwise as :meth:`add_tags`.
        """
        check_tags(tags, "tags", key_value=True)
        return await self._tag_job(
            project_id,
            dataset_id,
            record_ids,
            TagOperations(replace=tuple(tags)),
            "replace_tags",
            options,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )

    async def apply_many(
        self,
        project_id: str,
        dataset_id: str,
        changes: ChangeSource,
        *,
        deduplicate: bool = True,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Stream inserts, updates, deletes and tag operations together: one dataset version.

        Each change says what it is: a :class:`~llmobs_async.models.RecordCreate`
        (insert), a :class:`~llmobs_async.models.RecordUpdate` (update), a
        :class:`~llmobs_async.models.RecordDelete`, or a mapping with ``"op"``:
        ``{"op": "insert", "input": ...}``, ``{"op": "update", "id": ...,
        "tag_operations": {"add": [...]}}``, ``{"op": "delete", "id": ...}``.
        Batches (cut by ``batch_size`` changes or ``max_batch_bytes``) go as
        ``batch_update`` bodies carrying ``insert_records``,
        ``update_records`` and ``delete_records`` together, as ddtrace's
        ``Dataset.push()`` sends an edited dataset; the API applies a body's
        inserts, then its updates, then its deletes. Changes to the same
        record are applied in input order only when they fall in different
        batches: keep them in one change where you can.

        ``deduplicate`` is :meth:`create_many`'s, for the inserts. Isolation,
        the account and the result are :meth:`update_many`'s; a failure's
        ``records`` are the changes as given.
        """
        if not isinstance(deduplicate, bool):
            raise ValidationError("deduplicate", f"must be true or false; got {deduplicate!r}")
        transport = self._via(options, BULK_BODY) if options else self._transport
        route = _routes.BATCH_UPDATE.compile(project_id=project_id, dataset_id=dataset_id)
        op = _changes.MixedOperation(
            route=route,
            dataset_id=dataset_id,
            deduplicate=deduplicate,
            version=one_version(transport, project_id, dataset_id),
        )
        return await run_job(
            transport,
            op,
            changes,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
            name="apply_many",
            field="changes",
        )

    async def _tag_job(
        self,
        project_id: str,
        dataset_id: str,
        record_ids: str | IdSource,
        operations: TagOperations,
        name: str,
        options: RequestOptions,
        *,
        batch_size: int,
        max_batch_bytes: int,
        on_progress: ProgressCallback | None,
    ) -> BulkResult:
        transport = self._via(options, BULK_BODY) if options else self._transport
        op = attrs.evolve(
            batch_operation(transport, project_id, dataset_id, "update_records", b""),
            encode=_changes.tag_update_encoder(operations),
            item_id=given_id,
        )
        return await run_job(
            transport,
            op,
            (record_ids,) if isinstance(record_ids, str) else record_ids,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
            name=name,
            field="record_ids",
        )


def one_version(transport: Transport, project_id: str, dataset_id: str) -> OneVersion:
    """A job's one new dataset version, checked against the dataset's ``current_version``."""
    datasets = Datasets(transport)

    async def read_version() -> int:
        version = (await datasets.get(project_id, dataset_id)).current_version
        if isinstance(version, bool) or not isinstance(version, int):
            raise LLMObsError("the dataset's current_version is missing from the answer")
        return version

    return OneVersion(read_version)


def batch_operation(
    transport: Transport, project_id: str, dataset_id: str, field: str, options: bytes
) -> RecordsOperation:
    """The ``batch_update`` operation of one job: ``field`` is ``{insert,update,delete}_records``.

    The job makes one new dataset version (see :mod:`.._bulk.versions`), checked
    against the dataset's ``current_version``.
    """
    route = _routes.BATCH_UPDATE.compile(project_id=project_id, dataset_id=dataset_id)
    # Inserts without deduplication are the one change a re-sent request can apply twice.
    resend_unsure = field != "insert_records" or b'"deduplicate":true' in options
    return batch_update(
        route,
        dataset_id,
        field,
        options,
        version=one_version(transport, project_id, dataset_id),
        resend_unsure=resend_unsure,
    )


async def run_job(
    transport: Transport,
    op: BulkOperation,
    records: Any,
    *,
    batch_size: int,
    max_batch_bytes: int,
    on_progress: ProgressCallback | None,
    name: str,
    field: str = "records",
) -> BulkResult:
    """Run a bulk job of ``op`` over ``records``; see ``Records.update_many``."""
    check_batch_options(batch_size, max_batch_bytes)
    check_source(records, field)
    job = BulkJob(
        transport,
        op,
        batch_size=batch_size,
        max_batch_bytes=max_batch_bytes,
        on_progress=on_progress,
        name=name,
        field=field,
    )
    return await job.run(records)
