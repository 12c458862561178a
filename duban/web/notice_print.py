"""The printed 督办通知书 / 催办通知书 of a case's notice, offered on the case page (SPEC §14).

The same PDF `duban notice print` writes (duban/delivery/pdf.py): the number is given at the
first print and kept, so the board and the operator's printer hand out the same document.
A notice is reached through its case, so a unit that may not see the case gets 404 for it too.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from duban.errors import NotFoundError
from duban.web import scope
from duban.web.auth import Principal, page_principal, web_of

router = APIRouter(include_in_schema=False)
Signed = Annotated[Principal, Depends(page_principal)]


@router.get("/cases/{case_id}/notices/{notice_id}.pdf")
async def notice_pdf(request: Request, case_id: str, notice_id: str, p: Signed) -> Response:
    from duban.delivery.pdf import notice_pdf as render_pdf
    app = web_of(request).app
    case = await run_in_threadpool(scope.visible, app, p.user, scope.case_id_of(case_id))
    number = scope.case_id_of(notice_id)
    if not any(n["id"] == number for n in app.notices(case_id=case["id"])):
        raise NotFoundError(f"no notice {number} on case {case['id']}")
    body, facts = await run_in_threadpool(render_pdf, app, number)
    name = f"{facts['title']}-{facts['number']}.pdf"
    return Response(body, media_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"notice-{number}.pdf\"; filename*=UTF-8''{quote(name)}"})
