"""Benchmark app: a FastAPI JSON route with a path and a query parameter (Debian's python3-fastapi)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q, "name": "teapot", "tags": ["kitchen", "418"]}


@app.get("/")
async def root():
    """What the benchmark's readiness check asks for."""
    return {"ok": True}
