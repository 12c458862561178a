"""`duban notice print ID --out FILE.pdf`: the 督办通知书 / 催办通知书 as a PDF (SPEC §14).

The document carries an office number — 督办〔2027〕12号: the office's word (settings
`notify.number_word`, default 督办), the notice's year, and the next number of that year —
given the first time the notice is printed and kept (`notice_numbers`), so a reprint shows
the same number. The text is Chinese, set in the WenQuanYi Zen Hei font embedded as a
subset (fpdf2 reads the .ttc of Debian's `fonts-wqy-zenhei`; DUBAN_PDF_FONT names another
TTF/TTC). The lateness is as of the notice's date: the document is dated then.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from duban.delivery.messages import ASK, addressee, late_text
from duban.delivery.settings import load, settings_path
from duban.delivery.store import escalations
from duban.errors import DubanError, NotFoundError
from duban.service.app import App
from duban.storage.tables import CASES, NOTICE_NUMBERS, NOTICES

FONTS = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
         "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def font_path() -> str:
    chosen = os.environ.get("DUBAN_PDF_FONT")
    for path in ([chosen] if chosen else FONTS):
        if Path(path).is_file():
            return path
    raise DubanError(f"no Chinese font to print with: {chosen or FONTS[0]} not found "
                     "(install Debian's fonts-wqy-zenhei, or set DUBAN_PDF_FONT to a TTF/TTC with Chinese glyphs)")


def document_title(kind: str) -> str:
    return f"{kind}书" if kind.endswith("通知") else kind


def _number(conn: Connection, notice_id: int, word: str, year: int, now: datetime) -> tuple[str, int, int]:
    """The notice's office number: the one it was given, or the next of its year."""
    row = conn.execute(select(NOTICE_NUMBERS).where(NOTICE_NUMBERS.c.notice_id == notice_id)).first()
    if row is None:
        top = conn.execute(select(func.max(NOTICE_NUMBERS.c.number))
                           .where(NOTICE_NUMBERS.c.word == word, NOTICE_NUMBERS.c.year == year)).scalar_one()
        number = int(top or 0) + 1
        conn.execute(insert(NOTICE_NUMBERS).values(notice_id=notice_id, word=word, year=year, number=number,
                                                   issued_at=now))
        return word, year, number
    return str(row.word), int(row.year), int(row.number)


def notice_pdf(app: App, notice_id: int) -> tuple[bytes, dict[str, Any]]:
    """The PDF of a notice and what it says (the number is given on first print)."""
    notify = load(settings_path())
    word = notify.number_word if notify else "督办"
    office = notify.office if notify else "督查室"
    now = app.clock.now()
    font = font_path()
    with app.db.read() as conn:
        n = conn.execute(select(NOTICES).where(NOTICES.c.id == notice_id)).first()
        if n is None:
            raise NotFoundError(f"no notice {notice_id} (see: duban notice list)")
        case = conn.execute(select(CASES.c.title, CASES.c.lead_unit, CASES.c.due_at)
                            .where(CASES.c.id == n.case_id)).one()
        about = escalations(conn, [n.case_id]).get((n.case_id, n.created_at, n.kind))
    for attempt in range(3):  # two printers numbering the same year at once: the unique index lets one win
        try:
            with app.db.write() as conn:
                numbered = _number(conn, notice_id, word, n.created_at.astimezone(app.tz).year, now)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    deadline, due_at = about if about else ("办结时限", case.due_at)
    w, year, number = numbered
    facts = {
        "notice_id": notice_id, "case_id": n.case_id, "kind": n.kind, "title": document_title(n.kind),
        "number": f"{w}〔{year}〕{number}号", "word": w, "year": year, "serial": number,
        "recipient": n.recipient, "addressee": addressee(n.recipient), "unit": case.lead_unit,
        "case_title": case.title, "deadline": deadline,
        "due_at": due_at.astimezone(app.tz).isoformat() if due_at else None,
        "late": late_text(due_at, n.created_at), "date": f"{n.created_at.astimezone(app.tz):%Y年%m月%d日}",
        "office": office, "url": notify.case_url(n.case_id) if notify else None,
    }
    return _render(facts, due_at, n.created_at, font, app), facts


def _render(f: dict[str, Any], due_at: datetime | None, dated: datetime, font: str, app: App) -> bytes:
    from fpdf import FPDF

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # its subsetter reports every table it drops
    pdf = FPDF(format="A4")
    pdf.set_creation_date(dated)  # the notice's date, not the wall clock: a reprint is the same document
    pdf.set_title(f"{f['title']} {f['number']}")
    pdf.set_author(f["office"])
    pdf.set_creator("duban")
    pdf.set_margins(25, 30, 25)
    pdf.add_page()
    pdf.add_font("zh", fname=font)
    pdf.set_font("zh", size=22)
    pdf.set_text_color(200, 0, 0)
    pdf.cell(0, 14, f["title"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("zh", size=12)
    pdf.cell(0, 10, f["number"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(200, 0, 0)
    pdf.line(25, pdf.get_y() + 2, 185, pdf.get_y() + 2)
    pdf.ln(8)
    pdf.set_font("zh", size=14)
    due_text = f"{due_at.astimezone(app.tz):%Y年%m月%d日 %H:%M}" if due_at else "未设"
    ask = ASK.get(f["kind"], "请抓紧办理，并及时报告办理情况。")
    body = [
        f"{f['addressee']}：",
        f"　　由{f['unit']}承办的“{f['case_title']}”（编号 {f['case_id']}），{f['deadline']}为{due_text}，"
        f"截至{f['date']}{f['late']}。{ask}",
    ]
    for paragraph in body:
        pdf.multi_cell(0, 9, paragraph, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("zh", size=12)
    rows = [("承办单位", f["unit"]), ("督办事项", f["case_title"]), ("未完成事项", f["deadline"]),
            ("时限", due_text), ("通知时间", f["date"])]
    if f["url"]:
        rows.append(("事项页面", f["url"]))
    for label, value in rows:
        pdf.cell(32, 8, label + "：")
        pdf.multi_cell(0, 8, str(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(16)
    pdf.set_font("zh", size=14)
    pdf.cell(0, 9, f["office"], align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 9, f["date"], align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def print_notice(app: App, notice_id: int, out: str) -> dict[str, Any]:
    """Write the notice's PDF to `out` (under a temporary name, then renamed: the export's
    `check_output` / `atomic_files`, so the same --out rule and no half-written file)."""
    from duban.exports.safe_files import atomic_files, check_output

    target = check_output(out)
    data, facts = notice_pdf(app, notice_id)
    try:
        with atomic_files(target) as (temporary,):
            temporary.write_bytes(data)
    except OSError as exc:
        raise DubanError(f"cannot write {out[:200]}: {exc.strerror}") from None
    return {**facts, "file": str(target), "bytes": len(data)}
