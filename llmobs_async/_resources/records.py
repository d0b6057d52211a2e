"""``client.records``: list, create, update and delete a dataset's records, one call or a job."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from .. import _json, _routes
from .._bulk import csvsource, upload
from .._bulk.results import BulkResult, IdSource, NewRecordSource, ProgressCallback, RecordSource
from .._bulk.versions import StopRetry, refuse_unsure
from .._options import RequestOptions
from .._response import raw
from .._wire import jsonapi
from .._wire import records as _wire_records
from ..errors import ValidationError
from ..models import UNSET, DatasetRecord, RecordCreate, RecordUpdate, Unset
from ..pagination import AsyncPaginator, Page
from ._base import BULK_BODY, NO_BODY, filters, paginate
from ._record_changes import RecordChanges, batch_operation, run_job

__all__ = ["Records", "batch_operation"]


def _load_page(body: bytes) -> Page[DatasetRecord]:
    doc = _json.loads(body)
    data = doc["data"]
    if not isinstance(data, list):
        raise TypeError("data is not a list")
    structure = _wire_records.structure_record
    return Page(items=[structure(item) for item in data], next_cursor=jsonapi.next_cursor(doc))


_UPLOAD_BODY = "the upload's body is the file (multipart), not JSON"


def _sequence(records: Any) -> Sequence[Any]:
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
        raise ValidationError("records", "must be a sequence of records")
    if not records:
        raise ValidationError("records", "must not be empty")
    return records


class Records(RecordChanges):
    """Records of a dataset: ``/api/v2/llm-obs/v1/{project_id}/datasets/{dataset_id}/records``."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> RecordsWithRawResponse:
        """The one-request methods returning an :class:`~llmobs_async.APIResponse`."""
        return RecordsWithRawResponse(self)

    def list(
        self,
        project_id: str,
        dataset_id: str,
        *,
        version: int | None = None,
        tags: Sequence[str] | None = None,
        cursor: str | None = None,
        page_size: int | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncPaginator[DatasetRecord]:
        """Every record of a dataset (at its current ``version`` unless given); lazily.

        ``tags`` keeps the records that carry every one of them (``"key:value"``).
        Per-call ``options`` apply to every page.
        """
        route = _routes.LIST_RECORDS.compile(project_id=project_id, dataset_id=dataset_id)
        query = filters(tags=tags)
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 0:
                raise ValidationError("version", f"must be an integer >= 0; got {version!r}")
            query.append(("filter[version]", str(version)))
        transport = self._via(options, NO_BODY) if options else self._transport
        return paginate(transport, route, _load_page, query, cursor=cursor, page_size=page_size)

    async def create(
        self,
        project_id: str,
        dataset_id: str,
        records: Sequence[RecordCreate | Mapping[str, Any]],
        *,
        deduplicate: bool | Unset = UNSET,
        **options: Unpack[RequestOptions],
    ) -> builtins.list[DatasetRecord]:
        """Add records to a dataset in one request (a new dataset version); return them as stored.

        Each item is a :class:`~llmobs_async.models.RecordCreate` or a mapping
        of its fields (``input`` required). For more than a request's worth,
        use :meth:`create_many`.

        A request whose answer was lost (a dropped connection, a timeout, a
        5xx) is sent again only when deduplication keeps the records from
        being added twice: with ``deduplicate=False`` its error is raised
        instead (the records may or may not have been added).
        """
        route = _routes.CREATE_RECORDS.compile(project_id=project_id, dataset_id=dataset_id)
        encoded = _wire_records.encode_new_records(_sequence(records))
        dedup = b""
        if deduplicate is not UNSET:
            if not isinstance(deduplicate, bool):
                raise ValidationError("deduplicate", f"must be true or false; got {deduplicate!r}")
            dedup = b',"deduplicate":%s' % (b"true" if deduplicate else b"false")
        payload = jsonapi.envelope("records", b'{"records":%s%s}' % (encoded, dedup))
        transport = self._via(options) if options else self._transport
        try:
            return await transport.request(
                route,
                _wire_records.load_records,
                body=payload,
                before_retry=refuse_unsure if deduplicate is False else None,
            )
        except StopRetry as exc:
            raise exc.error from None

    async def update(
        self,
        project_id: str,
        dataset_id: str,
        records: Sequence[RecordUpdate | Mapping[str, Any]],
        **options: Unpack[RequestOptions],
    ) -> builtins.list[DatasetRecord]:
        """Update records of a dataset in one request and return them as stored.

        Each item is a :class:`~llmobs_async.models.RecordUpdate` or a mapping
        with its fields (``id`` required). For more than a request's worth of
        records use :meth:`update_many`.
        """
        route = _routes.UPDATE_RECORDS.compile(project_id=project_id, dataset_id=dataset_id)
        encoded = _wire_records.encode_records(_sequence(records))
        payload = _wire_records.records_body(encoded[1:-1])
        transport = self._via(options) if options else self._transport
        return await transport.request(route, _wire_records.load_records, body=payload)

    async def delete(
        self,
        project_id: str,
        dataset_id: str,
        record_ids: str | Sequence[str],
        /,
        **options: Unpack[RequestOptions],
    ) -> None:
        """Delete records of a dataset by id, in one request."""
        route = _routes.DELETE_RECORDS.compile(project_id=project_id, dataset_id=dataset_id)
        payload = jsonapi.encode_ids("records", "record_ids", record_ids)
        transport = self._via(options) if options else self._transport
        await transport.request(route, jsonapi.nothing, body=payload)

    async def update_many(
        self,
        project_id: str,
        dataset_id: str,
        records: RecordSource,
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Stream any number of record updates in batches; lose none.

        ``records`` is any iterable or async iterable of ``RecordUpdate`` or
        dicts; it is read lazily, so memory stays bounded by ``batch_size`` x
        the batches in flight (the client's ``max_concurrency``). Batches are
        cut at ``batch_size`` records or ``max_batch_bytes`` of JSON, whichever
        comes first; a 413 splits a batch in halves down to single records,
        and a batch the API refuses (400, 404, 409, 422) is split to isolate
        the records at fault. Invalid records are reported without being sent.

        Returns a :class:`~llmobs_async.BulkResult` where
        ``applied + sum(len(f.records) for f in failed) == submitted``;
        it does not raise for failed records (call ``raise_for_failures()``).
        ``on_progress`` gets a :class:`~llmobs_async.BulkProgress` after each batch.

        The job makes one new dataset version, however many batches: it goes
        through ``batch_update`` (``update_records``) as :meth:`create_many`
        does. There a ``null`` ``input`` or ``expected_output`` means
        "unchanged", so an update setting one to ``None`` is reported failed
        (a ``ValidationError`` naming it) instead of being sent; store a null
        with :meth:`update`.
        """
        return await self._batch_job(
            project_id,
            dataset_id,
            records,
            "update_records",
            b"",
            options,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )

    async def create_many(
        self,
        project_id: str,
        dataset_id: str,
        records: NewRecordSource,
        *,
        deduplicate: bool = True,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Stream any number of new records into a dataset: one new dataset version per job.

        Goes through ``batch_update``: one request makes the new version, the
        others add to it, whatever happens to the first batch (a refused
        record, a 5xx, an answer lost after it landed: the dataset's
        ``current_version`` is read before the job and after such an answer).
        A batch whose answer was lost is sent again when ``deduplicate`` (the
        default) keeps its records from being added twice; with
        ``deduplicate=False`` it is not, and its records are reported failed
        with :class:`~llmobs_async.BulkOutcomeUnknownError`. Otherwise as
        :meth:`update_many`.
        """
        if not isinstance(deduplicate, bool):
            raise ValidationError("deduplicate", f"must be true or false; got {deduplicate!r}")
        return await self._batch_job(
            project_id,
            dataset_id,
            records,
            "insert_records",
            b'"deduplicate":%s,' % (b"true" if deduplicate else b"false"),
            options,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )

    async def create_from_csv(
        self,
        project_id: str,
        dataset_id: str,
        file: csvsource.CsvFile | csvsource.CsvSource,
        *,
        input_columns: Sequence[str] = (),
        expected_output_columns: Sequence[str] = (),
        metadata_columns: Sequence[str] = (),
        id_column: str | None = None,
        delimiter: str = ",",
        start_line: int = 1,
        deduplicate: bool = True,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Stream a CSV file of any size into a dataset as new records: one dataset version.

        Each row becomes a record as in ddtrace's ``create_dataset_from_csv``
        (see :class:`~llmobs_async.CsvSource`); the header is checked before
        anything is sent. The records go through :meth:`create_many`, so every
        one is accounted for. For the line a failed record starts on, pass a
        ``CsvSource`` you made (with the column options on it) as ``file`` and
        call its ``line_of(position)``; its ``malformed`` lists the rows set
        aside, which are in neither ``applied`` nor ``failed``.
        """
        if options:
            self._via(options, BULK_BODY)  # checked before the file is opened
        source = await csvsource.open_source(
            file,
            input_columns=input_columns,
            expected_output_columns=expected_output_columns,
            metadata_columns=metadata_columns,
            id_column=id_column,
            delimiter=delimiter,
            start_line=start_line,
        )
        try:
            return await self.create_many(
                project_id,
                dataset_id,
                source,
                deduplicate=deduplicate,
                batch_size=batch_size,
                max_batch_bytes=max_batch_bytes,
                on_progress=on_progress,
                **options,
            )
        finally:
            source.close()

    async def upload_csv(
        self,
        project_id: str,
        dataset_id: str,
        file: csvsource.CsvFile,
        *,
        input_columns: Sequence[str],
        expected_output_columns: Sequence[str] = (),
        metadata_columns: Sequence[str] = (),
        id_column: str | None = None,
        delimiter: str = ",",
        deduplicate: bool = True,
        tags: Sequence[str] = (),
        **options: Unpack[RequestOptions],
    ) -> upload.CsvUploadResult:
        """Send a CSV file's records through the upload endpoint, in one streamed request.

        Rows become records as in :meth:`create_from_csv` and are re-written,
        as they are read, in the API's upload format: the file is never held
        in memory. The answer is for the whole file (how many records were
        created), never per record, and a retry re-sends the whole file, so
        ``file`` must be a path or a seekable file and ``deduplicate`` (on by
        default, unlike the API's) keeps a re-sent upload from adding records
        twice. ``tags`` are added to every record. A large file needs a longer
        timeout: ``client.with_options(timeout=600).records.upload_csv(...)``.
        Raises :class:`~llmobs_async.errors.UploadError` if the API reports
        that processing failed. Prefer :meth:`create_from_csv` unless the file
        is a first load too large for batches: it reports every record.
        """
        transport = self._via(options, _UPLOAD_BODY) if options else self._transport
        return await upload.upload_csv(
            transport,
            project_id,
            dataset_id,
            file,
            deduplicate=deduplicate,
            tags=tags,
            input_columns=input_columns,
            expected_output_columns=expected_output_columns,
            metadata_columns=metadata_columns,
            id_column=id_column,
            delimiter=delimiter,
        )

    async def delete_many(
        self,
        project_id: str,
        dataset_id: str,
        record_ids: IdSource,
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Delete any number of records by id: one new dataset version per job.

        Goes through ``batch_update`` like :meth:`create_many`; reports as :meth:`update_many`.
        """
        return await self._batch_job(
            project_id,
            dataset_id,
            record_ids,
            "delete_records",
            b"",
            options,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )

    async def _batch_job(
        self,
        project_id: str,
        dataset_id: str,
        items: Any,
        field: str,
        fixed: bytes,
        options: RequestOptions,
        *,
        batch_size: int,
        max_batch_bytes: int,
        on_progress: ProgressCallback | None,
    ) -> BulkResult:
        names = {"insert_records": "create_many", "delete_records": "delete_many"}
        transport = self._via(options, BULK_BODY) if options else self._transport
        return await run_job(
            transport,
            batch_operation(transport, project_id, dataset_id, field, fixed),
            items,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
            name=names.get(field, "update_many"),
        )


class RecordsWithRawResponse:
    """``client.records.with_raw_response``: each call returns an ``APIResponse``.

    The bulk jobs are not here: they make many requests, and report per record.
    """

    __slots__ = ("create", "delete", "update", "upload_csv")

    def __init__(self, records: Records) -> None:
        self.create = raw(records, Records.create)
        self.update = raw(records, Records.update)
        self.delete = raw(records, Records.delete)
        self.upload_csv = raw(records, Records.upload_csv)
