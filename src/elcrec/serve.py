"""HTTP service for a trained run: ``elcrec serve RUN`` (FastAPI + uvicorn).

Endpoints (ids are the user's own):
  POST /recommend                 {"items": [...], "k": 10, "exclude_seen": true}
  GET  /users/{user}/recommendations?k=10&exclude_seen=true
  POST /intent                    {"items": [...]}  -> intent and the 3 nearest centers
  GET  /health, GET /metadata

The model is loaded once, weights only.  Handlers are plain functions, so
FastAPI runs them in its thread pool; torch releases the GIL inside its
kernels, and each request uses one intra-op thread, so concurrent requests
overlap instead of queueing behind one another.
"""

from __future__ import annotations

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


def create_app(rec: Recommender) -> FastAPI:
    app = FastAPI(title="elcrec", version=rec.metadata()["version"])

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

    @app.post("/recommend", response_model=Recommendations)
    def recommend(req: SequenceRequest) -> dict:
        return rec.recommend(req.items, req.k, req.exclude_seen).to_dict()

    @app.get("/users/{user}/recommendations", response_model=Recommendations)
    def recommend_user(
        user: str, k: int = Query(10, ge=1, le=MAX_K), exclude_seen: bool = True
    ) -> dict:
        try:
            return rec.recommend_user(user, k, exclude_seen).to_dict()
        except KeyError:
            raise HTTPException(404, f"unknown user {user!r}") from None

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
    uvicorn.run(app, host=host, port=port, log_level="warning")
