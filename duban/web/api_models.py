"""The bodies `/api/v1` accepts (SPEC §13), checked before anything is done.

Unknown fields are refused (a misspelt `lead_unit` must not open a case with no unit),
values are taken as the types written, never coerced (`"data": {"x": 1}` is not "1"), and
no text may hold a NUL: a refusal is 422 `invalid` naming the field (`duban.web.errors`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

NUL = "\x00"


def no_nul(text: str) -> str:
    """A NUL character is nothing a person types, and PostgreSQL cannot store it."""
    if NUL in text:
        raise ValueError("不能含 NUL 字符（\\u0000）")
    return text


Text = Annotated[str, AfterValidator(no_nul)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Milestone(_Strict):
    due: Text = Field(description="时间节点的日期，如 2027-03-31", max_length=100)
    title: Text = Field(description="节点内容，如 完成方案编制", max_length=500)


class NewCase(_Strict):
    workflow: Text = Field(description="流程标识，如 supervision", max_length=100)
    title: Text = Field(description="标题", max_length=500)
    lead_unit: Text = Field(description="牵头单位（单位名录中的名称）", max_length=200)
    co_units: list[Text] = Field(default_factory=list, description="配合单位", max_length=50)
    due: Text | None = Field(default=None, description="办结时限：2027-05-31、15wd、3mo、5h …", max_length=100)
    data: dict[Text, Text] = Field(default_factory=dict, description="流程的字段（--set KEY=VALUE）")
    milestones: list[Milestone] = Field(default_factory=list, max_length=100)
    report: Text | None = Field(default=None, description="进度报告：monthly:5 或 biweekly", max_length=100)


class Fire(_Strict):
    trigger: Text = Field(description="操作标识或其中文名，如 accept 或 签收", max_length=100)
    note: Text = Field(default="", description="说明（退回重办等须填写）", max_length=10_000)
    data: dict[Text, Text] = Field(default_factory=dict, description="操作需要的字段，如 measure、until、unit")


class Me(BaseModel):
    name: str
    role: str
    role_label: str
    unit: str | None


class CasePage(BaseModel):
    items: list[dict[str, object]]
    next_cursor: int | None


class Verified(BaseModel):
    ok: bool
    events: int
    head: str | None
    first_bad: int | None
    reason: str | None
