"""What every request handler reaches through `request.app.state.web` (set by
`duban.web.factory.create_app`): its own module, so the handlers' modules need not import
the factory that imports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duban.access.service import Access
    from duban.service.app import App
    from duban.web.grouped_writes import GroupedWrites


@dataclass(frozen=True)
class Web:
    app: App
    access: Access
    secure_cookies: bool = True
    # SQLite: the steps waiting for the next group commit (`duban.web.grouped_writes`)
    writes: GroupedWrites | None = field(default=None, compare=False)

    @classmethod
    def of(cls, app: App, access: Access, secure_cookies: bool = True) -> Web:
        from duban.web.grouped_writes import GroupedWrites

        return cls(app, access, secure_cookies, GroupedWrites(app.db) if app.db.is_sqlite else None)
