"""Starlette and FastAPI apps (Debian's python3-starlette, python3-fastapi) for test/asgi.test.ts."""

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "set at startup"}


async def hello(request: Request):
    return JSONResponse(
        {
            "framework": "starlette",
            "path": request.url.path,
            "root_path": request.scope["root_path"],
            "greeting": request.state.greeting,
            "query": dict(request.query_params),
        }
    )


async def upload(request: Request):
    size = 0
    chunks = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks += 1
    return JSONResponse({"size": size, "chunks": chunks})


async def ticks(request: Request):
    async def gen():
        for i in range(3):
            yield "data: tick %d\n\n" % i
            await asyncio.sleep(0.3)

    return StreamingResponse(gen(), media_type="text/event-stream")


starlette_app = Starlette(
    routes=[Route("/hello", hello), Route("/upload", upload, methods=["POST"]), Route("/ticks", ticks)],
    lifespan=lifespan,
)

try:
    from fastapi import FastAPI
    from pydantic import BaseModel
except ImportError:  # the Starlette tests run without FastAPI
    FastAPI = None

if FastAPI is not None:
    fastapi_app = FastAPI()

    class Item(BaseModel):
        name: str
        price: float

    @fastapi_app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str = ""):
        return {"framework": "fastapi", "item_id": item_id, "q": q}

    @fastapi_app.post("/items")
    async def create_item(item: Item):
        return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}
