"""The HTTP API every service process serves: `/health`, `/metrics`, plus the service's own read routes.

A service router reads its database through the `pool_of` dependency (the pool is set on `app.state` by the
runtime; its `search_path` is the service's schema).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.runtime import metrics as _metrics  # registers the runtime's metrics


def pool_of(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise RuntimeError("the database pool is not ready")
    return pool


def create_app(service: str, router: APIRouter | None = None, pool: asyncpg.Pool | None = None) -> FastAPI:
    app = FastAPI(title=f"sn51 {service}", docs_url="/docs", redoc_url=None)
    app.state.service = service
    app.state.pool = pool
    app.state.ready = False  # set once the core is rebuilt and the consumer runs

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        body: dict[str, Any] = {"service": service, "ready": bool(request.app.state.ready)}
        db_ok = False
        pool_: asyncpg.Pool | None = request.app.state.pool
        if pool_ is not None:
            try:
                async with pool_.acquire(timeout=2) as conn:
                    db_ok = await conn.fetchval("SELECT 1") == 1
            except (OSError, asyncpg.PostgresError, TimeoutError):
                db_ok = False
        body["database"] = db_ok
        ok = db_ok and body["ready"]
        body["status"] = "ok" if ok else "unavailable"
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        pool_: asyncpg.Pool | None = request.app.state.pool
        if pool_ is not None:  # gauges read from the service's tables (payouts by state, watcher block, ...)
            try:
                async with pool_.acquire(timeout=2) as conn:
                    await _metrics.refresh(conn, service)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                pass  # the scrape still answers with what the process counted
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if router is not None:
        app.include_router(router)
    return app
