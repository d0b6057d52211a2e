"""Every endpoint of the fake API once: method, path and the store call that answers it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from multidict import MultiMapping

from . import _datasets as ds
from . import _experiments as ex
from . import _upload as up
from ._store import FakeStore
from ._wire import Reply

V1 = "/api/v2/llm-obs/v1"
V2 = "/api/v2/llm-obs/v2"
V3 = "/api/v2/llm-obs/v3"
_D = V1 + "/{project_id}/datasets/{dataset_id}"
UPLOAD = "/records/upload"
"""The end of the one path that takes a multipart body (a CSV file), not JSON."""

Path = Mapping[str, str]
Call = Callable[[FakeStore, Path, MultiMapping[str], Any], Reply]
"""``(store, path parameters, query, decoded body or None) -> answer``."""

ROUTES: list[tuple[str, str, Call]] = [
    # projects
    ("POST", V1 + "/projects", lambda s, p, q, b: ds.create_project(s, b)),
    ("GET", V1 + "/projects", lambda s, p, q, b: ds.list_projects(s, q)),
    ("POST", V1 + "/projects/delete", lambda s, p, q, b: ds.delete_projects(s, b)),
    (
        "PATCH",
        V1 + "/projects/{project_id}",
        lambda s, p, q, b: Reply(200, s.update_project(p["project_id"], b)),
    ),
    # experiments and their events
    ("POST", V1 + "/experiments", lambda s, p, q, b: ex.create_experiment(s, b)),
    ("GET", V1 + "/experiments", lambda s, p, q, b: ex.list_experiments(s, q)),
    ("POST", V1 + "/experiments/delete", lambda s, p, q, b: ex.delete_experiments(s, b)),
    (
        "PATCH",
        V1 + "/experiments/{experiment_id}",
        lambda s, p, q, b: ex.update_experiment(s, p["experiment_id"], b),
    ),
    (
        "POST",
        V1 + "/experiments/{experiment_id}/events",
        lambda s, p, q, b: ex.push_events(s, p["experiment_id"], b),
    ),
    (
        "GET",
        V3 + "/experiments/{experiment_id}/events",
        lambda s, p, q, b: ex.list_events(s, p["experiment_id"], q),
    ),
    # datasets
    ("POST", V1 + "/{project_id}/datasets", lambda s, p, q, b: ds.create_dataset(s, _p(p), b)),
    ("GET", V1 + "/{project_id}/datasets", lambda s, p, q, b: ds.list_datasets(s, _p(p), q)),
    (
        "POST",
        V1 + "/{project_id}/datasets/delete",
        lambda s, p, q, b: ds.delete_datasets(s, _p(p), b),
    ),
    ("PATCH", _D, lambda s, p, q, b: ds.update_dataset(s, *_pd(p), b)),
    ("GET", _D + "/versions", lambda s, p, q, b: ds.dataset_versions(s, *_pd(p))),
    # records
    ("GET", _D + "/records", lambda s, p, q, b: ds.list_records(s, *_pd(p), q)),
    ("POST", _D + "/records", lambda s, p, q, b: ds.create_records(s, *_pd(p), b)),
    ("PATCH", _D + "/records", lambda s, p, q, b: Reply(200, s.update_records(*_pd(p), b))),
    ("POST", _D + "/records/delete", lambda s, p, q, b: ds.delete_records(s, *_pd(p), b)),
    ("POST", _D + "/batch_update", lambda s, p, q, b: ds.batch_update(s, *_pd(p), b)),
    (
        "POST",
        V2 + "/{project_id}/datasets/{dataset_id}" + UPLOAD,
        lambda s, p, q, b: up.upload_records(s, *_pd(p), q, b),
    ),
]
"""The routes, in the order they are matched (literal segments before parameters)."""


def _p(path: Path) -> str:
    return path["project_id"]


def _pd(path: Path) -> tuple[str, str]:
    return path["project_id"], path["dataset_id"]
