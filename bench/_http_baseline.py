"""The HTTP baseline for bench_receiver: the same stack (uvicorn + FastAPI), no work.

It reads the body and answers 204, so the receiver's figures over HTTP can be
given as a ratio to what the server stack alone costs on this machine.
Run by bench_receiver.py as ``uvicorn _http_baseline:app``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/")
async def receive(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
