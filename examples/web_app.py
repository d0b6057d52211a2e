"""A web app: aiohttp.web handlers that await one shared client.

    python examples/web_app.py                   # serve on :8080, against the built-in fake API
    python examples/web_app.py --smoke           # start, send a few requests, print, exit
    DD_API_KEY=... DD_APP_KEY=... python examples/web_app.py   # your org

One ``LLMObsClient`` is made when the app starts (in the app's event loop, as
a client belongs to the loop that first uses it) and closed when it stops;
every handler awaits it, so requests share its connection pool, its limit on
requests in flight and its rate gate. The routes:

    POST /feedback                        {"question", "answer", "good"} -> a record in a dataset
    GET  /experiments/{experiment_id}     the experiment, or 404
    POST /experiments/{experiment_id}/complete

Against the fake, ``--smoke`` makes the fake answer 503 once and drop one
connection: the handlers still answer, since the client retries.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

CLIENT = web.AppKey("client", LLMObsClient)
PROJECT = web.AppKey("project", models.Project)
DATASET = web.AppKey("dataset", models.Dataset)
FAKE = web.AppKey("fake", FakeLLMObsServer)


async def llmobs(app: web.Application) -> AsyncIterator[None]:
    """Open the client (and the fake, with no keys set) for the app's life, then close it."""
    fake = None
    if os.environ.get("DD_API_KEY"):  # DD_SITE or DD_LLMOBS_OVERRIDE_ORIGIN say where
        client = LLMObsClient()
    else:
        fake = app[FAKE] = await FakeLLMObsServer().start()
        client = LLMObsClient(base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key)
    try:
        project = app[PROJECT] = await client.projects.create("examples")  # get-or-create
        found = [d async for d in client.datasets.list(project.id, name="feedback")]
        app[DATASET] = found[0] if found else await client.datasets.create(project.id, "feedback")
        app[CLIENT] = client
        yield
    finally:
        await client.close()
        if fake is not None:
            await fake.stop()


async def feedback(request: web.Request) -> web.Response:
    """Keep a question, its answer and a user's verdict as a record of the feedback dataset."""
    body = await request.json()
    try:
        (record,) = await request.app[CLIENT].records.create(
            request.app[PROJECT].id,
            request.app[DATASET].id,
            [
                {
                    "input": {"question": body["question"]},
                    "expected_output": body["answer"] if body.get("good") else None,
                    "metadata": {"good": bool(body.get("good"))},
                }
            ],
        )
    except KeyError as exc:
        return web.json_response({"error": f"missing field {exc}"}, status=400)
    except errors.ValidationError as exc:  # bad input never reaches the API
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"record_id": record.id}, status=201)


async def get_experiment(request: web.Request) -> web.Response:
    """The experiment as JSON; the API's 404 becomes ours."""
    try:
        exp = await request.app[CLIENT].experiments.get(request.match_info["experiment_id"])
    except errors.NotFoundError:
        return web.json_response({"error": "no such experiment"}, status=404)
    return web.json_response({"id": exp.id, "name": exp.name, "status": exp.status})


async def complete(request: web.Request) -> web.Response:
    """Mark an experiment completed and answer with it as stored."""
    experiment_id = request.match_info["experiment_id"]
    try:
        exp = await request.app[CLIENT].experiments.update(experiment_id, status="completed")
    except errors.NotFoundError:
        return web.json_response({"error": "no such experiment"}, status=404)
    except errors.LLMObsError as exc:  # the API still failing after the client's retries
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response({"id": exp.id, "status": exp.status})


def make_app() -> web.Application:
    """The application: routes, and the client's lifetime tied to the app's."""
    app = web.Application()
    app.cleanup_ctx.append(llmobs)
    app.router.add_post("/feedback", feedback)
    app.router.add_get("/experiments/{experiment_id}", get_experiment)
    app.router.add_post("/experiments/{experiment_id}/complete", complete)
    return app


async def smoke() -> int:
    """Serve on a free port, send the requests a user would, check the answers."""
    app = make_app()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    print(f"serving on {url}")
    ok = True
    try:
        exp = await app[CLIENT].experiments.create(
            app[PROJECT].id, app[DATASET].id, "web-demo", ensure_unique=False
        )
        if FAKE in app:  # the client rides these out; the handlers never see them
            app[FAKE].inject(status=503)
            app[FAKE].inject(drop=True, after=1)
        async with aiohttp.ClientSession() as http:
            answers: list[tuple[str, int, Any]] = []
            for method, path, body in [
                ("POST", "/feedback", {"question": "2+2?", "answer": "4", "good": True}),
                ("POST", "/feedback", {"answer": "no question"}),
                ("GET", f"/experiments/{exp.id}", None),
                ("POST", f"/experiments/{exp.id}/complete", None),
                ("GET", "/experiments/no-such-id", None),
            ]:
                async with http.request(method, url + path, json=body) as resp:
                    answers.append((f"{method} {path}", resp.status, await resp.json()))
        if FAKE in app:
            seen = [r.status for r in app[FAKE].requests]
            print(f"the fake answered {seen.count(503)} x 503, dropped {seen.count(0)}: retried")
        for what, status, answer in answers:
            print(f"{what} -> {status} {answer}")
        statuses = [status for _, status, _ in answers]
        ok = statuses == [201, 400, 200, 200, 404] and answers[3][2]["status"] == "completed"
    finally:
        await runner.cleanup()
    print("smoke test passed" if ok else "smoke test FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A web app awaiting one shared client.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--smoke", action="store_true", help="send a few requests and exit")
    args = parser.parse_args()
    if args.smoke:
        sys.exit(asyncio.run(smoke()))
    web.run_app(make_app(), host="127.0.0.1", port=args.port)
