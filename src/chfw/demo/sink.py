"""A supplier endpoint that accepts everything (204) without checking: a benchmark baseline.

It isolates the DSP's own throughput from the cost of the suppliers' verifying
receivers (which on a real network run on the suppliers' machines).
Run: ``python -m uvicorn chfw.demo.sink:app --port P``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI(title="chfw benchmark sink")
_received = {"count": 0}


@app.post("/")
async def receive(request: Request) -> Response:
    await request.body()
    _received["count"] += 1
    return Response(status_code=204)


@app.get("/healthz")
def healthz() -> dict[str, int | str]:
    return {"status": "ok", "received": _received["count"]}
