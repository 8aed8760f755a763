"""The HTTP server: TF Serving's REST API for every signature, a JSON API and a page for
people, health and readiness. aiohttp (docs/serving.md says why); each model call runs on a
thread pool, so requests in flight never block the event loop and use both cores."""

import argparse
import asyncio
import concurrent.futures
import json
import logging
import os
import threading
from typing import Callable, Dict, Optional

import tensorflow as tf
from aiohttp import web

from pipeline import arguments
from pipeline.server import rest
from pipeline.server.batching import Coalescer
from pipeline.server.favourites import favourites
from pipeline.server.versions import ModelVersions, Served
from pipeline.serving import Constraints, RequestError, pairs

log = logging.getLogger("recsys.serve")
MODEL_NAME = "recsys"
MAX_K = 1000  # the JSON API's bound on k; the signatures take any k ≥ 1
MAX_BODY = 8 << 20
ACCESS_LOG = '%a "%r" %s %b %Tf'
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.html")
PAGE_USERS = 50  # users offered to pick from
PAGE_MOVIES = 40  # movies a new user can tick


def _error(status: int, message: str) -> web.Response:
    return web.json_response(rest.error_body(message), status=status)


@web.middleware
async def _errors(request: web.Request, handler):
    """Every failure as TF Serving's {"error": ...} with its status; never a trace."""
    try:
        return await handler(request)
    except rest.TooLargeError as error:
        return _error(413, str(error))
    except (rest.BadRequestError, RequestError) as error:
        return _error(400, str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(error.status, error.text or error.reason)
    except Exception:  # noqa: BLE001 - logged whole, answered in one line
        log.exception("%s %s failed", request.method, request.path)
        return _error(500, "internal error (logged by the server)")


class Handlers:
    def __init__(self, versions: ModelVersions, data_dir: Optional[str], threads: int):
        self.versions = versions
        self._data_dir = data_dir
        self._titles = titles_of(data_dir)
        self._favourites = None
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "model")
        self._coalescer = Coalescer(self._call)

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def _served(self) -> Served:
        served = self.versions.served
        if served is None:
            raise web.HTTPServiceUnavailable(
                text=f"no model served yet: nothing pushed to {self.versions.serving_dir}")
        return served

    async def _call(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    # TF Serving's REST API

    async def model_status(self, request: web.Request) -> web.Response:
        self._model(request)
        version = request.match_info.get("version")
        served = self.versions.served
        statuses = []
        if served is not None and version in (None, served.version):
            statuses.append(_status(served.version, "AVAILABLE"))
        for refused, why in sorted(self.versions.refused().items()):
            if version in (None, refused):
                statuses.append(_status(refused, "END", why))
        if not statuses:
            raise web.HTTPNotFound(text=f"Could not find version {version} of model "
                                        f"{MODEL_NAME}" if version else "no version loaded")
        return web.json_response({"model_version_status": statuses})

    async def metadata(self, request: web.Request) -> web.Response:
        served = self._resolve(request)
        recommender = served.recommender
        signatures = {}
        for name in recommender.signature_names():
            inputs, outputs = recommender.signature_specs(name)
            signatures[name] = {"inputs": {k: _spec(v) for k, v in inputs.items()},
                                "outputs": {k: _spec(v) for k, v in outputs.items()}}
        return web.json_response({"model_spec": {"name": MODEL_NAME,
                                                 "version": served.version},
                                  "metadata": {"signature_def": signatures}})

    async def predict(self, request: web.Request) -> web.Response:
        served = self._resolve(request)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as error:
            raise rest.BadRequestError(f"the body is not JSON: {error}") from None
        name = body.get("signature_name", "serving_default") if isinstance(body, dict) else None
        names = served.recommender.signature_names()
        if name not in names:
            raise rest.BadRequestError(
                f"signature_name {name!r} is not served; the model has {', '.join(names)}")
        signature = served.recommender.signature(name)
        specs, _ = served.recommender.signature_specs(name)
        inputs, row_form = rest.request_tensors(body, specs)
        outputs = await self._coalescer.call(served.version, name, signature, inputs)
        return web.json_response(rest.response_body(outputs, row_form))

    async def _ranked(self, served: Served, name: str, ids_input: str, value: str, k: int):
        """One row of a ranking signature, batched with concurrent requests."""
        inputs = {ids_input: tf.constant([value]), "k": tf.constant(k)}
        outputs = await self._coalescer.call(served.version, name,
                                             served.recommender.signature(name), inputs)
        return pairs(outputs)[0]

    def _model(self, request: web.Request) -> None:
        if request.match_info["model"] != MODEL_NAME:
            raise web.HTTPNotFound(
                text=f"Servable not found for request: Latest({request.match_info['model']})")

    def _resolve(self, request: web.Request) -> Served:
        """The served version, if the request names none or names it."""
        self._model(request)
        served = self._served()
        version = request.match_info.get("version")
        if version is not None and version != served.version:
            raise web.HTTPNotFound(
                text=f"Servable not found for request: Specific({MODEL_NAME}, {version})")
        return served

    # The JSON API for people

    async def recommend(self, request: web.Request) -> web.Response:
        served = self._served()
        query = request.query
        k = _k(query)
        constraints = Constraints(
            exclude_genres=_parsed(query, "not_genres", arguments.names, ()),
            exclude_item_ids=_parsed(query, "exclude", arguments.names, ()),
            **dict(zip(("min_year", "max_year"),
                       _parsed(query, "years", arguments.year_range, (0, 0)))))
        genres = _parsed(query, "genres", arguments.names, ())
        likes = _parsed(query, "likes", arguments.rated_items, {})
        recommender = served.recommender
        if likes or ("user" not in query and genres):
            rows = await self._call(recommender.recommend_from_answers, likes, genres,
                                    constraints, k)
            asked = {"likes": likes, "genres": list(genres)}
        elif "user" in query:
            user = query["user"].strip()
            if not user:
                raise rest.BadRequestError("user must not be empty")
            constraints = Constraints(include_genres=genres, **{
                f: getattr(constraints, f) for f in ("exclude_genres", "min_year", "max_year",
                                                     "exclude_item_ids")})
            if constraints == Constraints():
                rows = await self._ranked(served, "recommend", "user_id", user, k)
            else:
                rows = (await self._call(recommender.recommend_constrained, [user],
                                         constraints, k))[0]
            asked = {"user": user}
        else:
            raise rest.BadRequestError("give user=ID, or a new user's likes=ID[:RATING],... "
                                       "and/or genres=NAME,...")
        return web.json_response({**asked, "version": served.version,
                                  "items": self._items(rows)})

    async def similar(self, request: web.Request) -> web.Response:
        served = self._served()
        item = request.query.get("item", "").strip()
        if not item:
            raise rest.BadRequestError("give item=ID")
        rows = await self._ranked(served, "similar_items", "item_id", item, _k(request.query))
        return web.json_response({"item": item, "title": self._titles().get(item),
                                  "version": served.version, "items": self._items(rows)})

    def _items(self, rows):
        titles = self._titles()
        return [{"item_id": item, "title": titles.get(item), "score": score}
                for item, score in rows]

    async def catalog(self, request: web.Request) -> web.Response:
        """What the page offers to pick from: some users, the most popular movies (the
        no-answer ranking), the genres."""
        served = self._served()
        recommender = served.recommender
        popular = await self._call(recommender.recommend_from_answers, {}, (), Constraints(),
                                   PAGE_MOVIES)
        return web.json_response({"version": served.version,
                                  "users": recommender.ids("user")[:PAGE_USERS],
                                  "popular": self._items(popular),
                                  "genres": recommender.genre_names()})

    async def user(self, request: web.Request) -> web.Response:
        user = request.query.get("user", "").strip()
        if not user:
            raise rest.BadRequestError("give user=ID")
        if self._favourites is None:
            self._favourites = await self._call(favourites, self._data_dir) if (
                self._data_dir) else {}
        titles = self._titles()
        return web.json_response({"user": user, "items": [
            {"item_id": item, "title": titles.get(item), "rating": rating}
            for item, rating in self._favourites.get(user, [])]})

    async def page(self, request: web.Request) -> web.Response:
        return web.FileResponse(PAGE)

    # Health

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        served = self._served()
        return web.json_response({"status": "ready", "version": served.version})


def _status(version: str, state: str, why: str = "") -> dict:
    return {"version": version, "state": state,
            "status": {"error_code": "UNKNOWN" if why else "OK", "error_message": why}}


def _spec(spec) -> dict:
    return {"dtype": spec.dtype.name,
            "shape": [-1 if d is None else d for d in spec.shape.as_list()]}


def _parsed(query, name: str, parse, default):
    if name not in query:
        return default
    try:
        return parse(query[name])
    except argparse.ArgumentTypeError as error:
        raise rest.BadRequestError(f"{name}: {error}") from None


def _k(query) -> int:
    k = _parsed(query, "k", arguments.positive, 10)
    if k > MAX_K:
        raise rest.BadRequestError(f"k: at most {MAX_K}, got {k}")
    return k


def create_app(versions: ModelVersions, data_dir: Optional[str],
               threads: int = 4) -> web.Application:
    """data_dir: the raw data folder, for titles and what users rated (None: ids only)."""
    handlers = Handlers(versions, data_dir, threads)
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    model = "/v1/models/{model}"
    version = model + "/versions/{version:\\d+}"
    for prefix in (model, version):
        app.router.add_get(prefix, handlers.model_status)
        app.router.add_get(prefix + "/metadata", handlers.metadata)
        app.router.add_post(prefix + ":predict", handlers.predict)
    app.router.add_get("/recommend", handlers.recommend)
    app.router.add_get("/similar", handlers.similar)
    app.router.add_get("/catalog", handlers.catalog)
    app.router.add_get("/user", handlers.user)
    app.router.add_get("/", handlers.page)
    app.router.add_get("/healthz", handlers.health)
    app.router.add_get("/readyz", handlers.ready)

    async def stop_threads(_):
        handlers.close()

    app.on_cleanup.append(stop_threads)
    return app


def titles_of(data_dir: Optional[str]) -> Callable[[], Dict[str, str]]:
    """The items' titles, read again whenever items.csv changes (a new movie lands)."""
    from pipeline.serving import item_titles

    cache = {"stamp": None, "titles": {}}

    def titles() -> Dict[str, str]:
        path = os.path.join(data_dir, "items.csv") if data_dir else None
        stamp = os.stat(path).st_mtime_ns if path and os.path.exists(path) else None
        if stamp != cache["stamp"]:
            cache.update(stamp=stamp, titles=item_titles(data_dir) if stamp else {})
        return cache["titles"]

    return titles


class BackgroundServer:
    """The server on a thread of this process (tests, `make serve-check`); port 0 picks one."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0):
        self._app, self._host, self._port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.port: Optional[int] = None

    def __enter__(self) -> "BackgroundServer":
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._thread.start()
        self._started.wait()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self._host, self._port)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self._runner = runner
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


def serve(versions: ModelVersions, data_dir: Optional[str], host: str, port: int,
          poll_seconds: float, threads: int) -> None:
    """Blocks serving until interrupted; the newest version is polled for in the background."""
    stop = threading.Event()
    versions.watch(poll_seconds, stop)
    try:
        web.run_app(create_app(versions, data_dir, threads), host=host, port=port,
                    access_log=logging.getLogger("recsys.access"), access_log_format=ACCESS_LOG,
                    print=lambda line: log.info(line.strip()))
    finally:
        stop.set()
