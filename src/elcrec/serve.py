"""HTTP service for a trained run: ``elcrec serve RUN`` (FastAPI + uvicorn).

Endpoints (ids are the user's own):
  POST /recommend                 {"items": [...], "k": 10, "exclude_seen": true}
  GET  /users/{user}/recommendations?k=10&exclude_seen=true
  POST /intent                    {"items": [...]}  -> intent and the 3 nearest centers
  GET  /health, GET /metadata

The model is loaded once, weights only.  Recommendation requests that arrive
while the model is busy are answered together by one batched forward pass
(``Batcher``): under load a request waits for at most one pass in progress,
and the passes get cheaper per request, instead of each request queueing for
its own pass.  The other handlers are plain functions in FastAPI's thread pool.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from elcrec.inference import Recommender

MAX_ITEMS = 1000  # a posted sequence longer than this is refused (the model reads the last 50)
MAX_K = 1000
MAX_BODY_BYTES = 64 * 1024

ItemId = int | str


class SequenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemId] = Field(min_length=1, max_length=MAX_ITEMS, description="oldest first")
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True


class IntentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[ItemId] = Field(min_length=1, max_length=MAX_ITEMS)


class Recommendations(BaseModel):
    items: list[ItemId]
    scores: list[float]
    intent: int | None
    unknown_items: list[ItemId]


class Batcher:
    """Answers the recommendation requests waiting at the same moment with one
    batched pass (per exclude_seen flag; the largest k, then each cut to its own)."""

    def __init__(self, rec: Recommender, max_batch: int = 64):
        self.rec = rec
        self.max_batch = max_batch
        self.queue: asyncio.Queue = asyncio.Queue()

    async def recommend(self, items: list, k: int, exclude_seen: bool) -> dict:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((items, k, exclude_seen, future))
        return await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                answers = await asyncio.to_thread(self._answer, batch)
            except Exception as e:  # a failed pass fails its requests, not the service
                answers = [e] * len(batch)
            for (*_, future), answer in zip(batch, answers):
                if future.done():
                    continue
                if isinstance(answer, Exception):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    def _answer(self, batch: list) -> list[dict]:
        answers: list = [None] * len(batch)
        for flag in (True, False):
            rows = [i for i, b in enumerate(batch) if b[2] is flag]
            if not rows:
                continue
            k = max(batch[i][1] for i in rows)
            recs = self.rec.recommend_many([batch[i][0] for i in rows], k, flag)
            for i, r in zip(rows, recs):
                d = r.to_dict()
                d["items"], d["scores"] = d["items"][: batch[i][1]], d["scores"][: batch[i][1]]
                answers[i] = d
        return answers


def create_app(rec: Recommender) -> FastAPI:
    batcher = Batcher(rec)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()

    app = FastAPI(title="elcrec", version=rec.metadata()["version"], lifespan=lifespan)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_BODY_BYTES):
            return JSONResponse(
                status_code=413,
                content={"detail": f"request body over {MAX_BODY_BYTES} bytes"},
            )
        return await call_next(request)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict:
        return rec.metadata()

    # The answers are built here, so they skip response-model re-validation
    # (Recommendations documents their shape in the OpenAPI schema).
    @app.post("/recommend", response_model=Recommendations)
    async def recommend(req: SequenceRequest) -> JSONResponse:
        return JSONResponse(await batcher.recommend(req.items, req.k, req.exclude_seen))

    @app.get("/users/{user}/recommendations", response_model=Recommendations)
    async def recommend_user(
        user: str, k: int = Query(10, ge=1, le=MAX_K), exclude_seen: bool = True
    ) -> JSONResponse:
        try:
            seq = rec.user_sequence(user)
        except KeyError:
            raise HTTPException(404, f"unknown user {user!r}") from None
        items = [rec.data.item_ids[i - 1] for i in seq]
        return JSONResponse(await batcher.recommend(items, k, exclude_seen))

    @app.post("/intent")
    def intent(req: IntentRequest) -> dict:
        try:
            return rec.intent(req.items)
        except ValueError as e:
            raise HTTPException(409, str(e)) from None

    return app


def serve(
    run_dir: str, host: str = "127.0.0.1", port: int = 8000, threads: int = 1, ann_ef: int = 0
) -> None:
    import torch
    import uvicorn

    torch.set_num_threads(threads)
    rec = Recommender.load(run_dir)
    if ann_ef:
        rec.use_ann(ef_search=ann_ef)
    app = create_app(rec)
    # The loaded model and id maps are many long-lived Python objects; without
    # this, each full garbage collection walks them all and stalls every
    # request in flight (measured: ~100 ms about once a second under load).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning")
