"""The words the engine writes in the lines a sweep reports (`Outcome.fired`): escalation
levels and the recipients of a rung's notice, as people read them (SPEC §16 "People read
Chinese; scripts read identifiers"). `duban.present.labels` shows the same words everywhere
else; they live here because the engine, which may not import the presentation layer,
writes them first.
"""

from __future__ import annotations

LEVEL_LABELS = {0: "正常", 1: "黄牌预警", 2: "红牌超期", 3: "督办通知", 4: "通报", 5: "问责"}
# Who a ladder rung's notice goes to, when it is not a unit by name.
RECIPIENT_LABELS = {"office": "督查室", "leader": "分管领导", "inspector": "纪检监察",
                    "lead_unit": "牵头单位", "co_units": "配合单位"}


def level_label(level: int | None) -> str:
    return "" if level is None else LEVEL_LABELS.get(level, str(level))


def recipient_label(recipient: str | None) -> str:
    """A notice's recipient: a unit by its name, a role by its Chinese name."""
    return RECIPIENT_LABELS.get(recipient or "", recipient or "")


def rung_line(case_id: int | None, deadline: str, rung: str, level: int | None, notice: str | None,
              recipients: list[str]) -> str:
    """What `tick` prints for one rung of a ladder that fired."""
    line = f"案件 {case_id} {deadline} {rung}"
    if level is not None:
        line += f" → 预警级别 {level}（{level_label(level)}）"
    if notice:
        line += f"，{notice}送 " + "、".join(map(recipient_label, recipients))
    return line
