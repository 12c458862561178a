"""What every request handler reaches through `request.app.state.web` (set by
`duban.web.factory.create_app`): its own module, so the handlers' modules need not import
the factory that imports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duban.access.service import Access
    from duban.service.app import App


@dataclass(frozen=True)
class Web:
    app: App
    access: Access
    secure_cookies: bool = True
