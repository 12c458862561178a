"""The bare framework serving the same bytes (SPEC §11's other kind of anchor), for
`bench http`: FastAPI on uvicorn, as `duban serve` runs them (the same protocol class), with
one route at the case read's path answering a fixed case document — no sign-in, no database,
no duban. What it reaches is the most any FastAPI endpoint can do on this machine with these
clients, so the case read's HTTP rate is read against it as well as against the in-process read.

Run by `bench.http` as `python -m bench.bare_app PORT FILE` (FILE: the JSON bytes to serve).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(port: int, body: bytes) -> None:
    import uvicorn
    from fastapi import FastAPI, Response

    from duban.web.http_protocol import OneWriteHttpToolsProtocol

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/api/v1/cases/{case_id}")
    async def case(case_id: str) -> Response:
        return Response(body, media_type="application/json", headers={"ETag": '"1"'})

    @app.get("/api/v1/me")
    async def me() -> Response:
        return Response(b"{}", media_type="application/json")

    @app.get("/login")
    async def login() -> Response:
        return Response(b"ok")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", http=OneWriteHttpToolsProtocol)


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes())
