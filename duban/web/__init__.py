"""The office board and the HTTP API (SPEC §13): `duban serve`.

A thin layer over `duban.service.app.App` (the use cases) and `duban.access.service.Access`
(sign-in): it authenticates the person, decides what they may *see* (a unit sees only its
own cases, SPEC §12), turns requests into App calls and App answers into pages and JSON.
Every rule about what may be *done* stays in the engine; a refusal comes back as a
`duban.errors` exception and is mapped to a status code in one place (`duban.web.errors`).

Modules: `factory` (the FastAPI app), `auth` (who is asking, CSRF), `errors`, `scope`
(visibility and the actions a user has), `cards` (红黄牌 and remaining time), `query`
(filters, paging, to-do), `api` and `api_models` (`/api/v1`), `pages` and `case_pages`
(the board), `board` (看板 and its SVG chart).
"""
