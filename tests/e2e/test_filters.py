"""Filters are checked and names may be Chinese labels (SPEC §16): an unknown state, workflow,
unit or case in a filter exits 2 or 3 listing what exists, never an empty list; triggers
and states may be given by their label, and a trigger that does not exist says so."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Duban, Run, row_counts

NOW = "2026-03-02T09:00"


def refused(duban: Duban, *args: str, code: int, says: tuple[str, ...] = (), actor: str | None = None) -> Run:
    before = row_counts(duban.db_url)
    run = duban(*args, now=NOW, actor=actor)
    assert run.code == code, f"exit {run.code}, stderr: {run.stderr}"
    assert run.stdout == ""
    for fragment in says:
        assert fragment in run.stderr, f"{fragment!r} not in {run.stderr!r}"
    assert row_counts(duban.db_url) == before
    return run


def ids(duban: Duban, *args: str) -> list[int]:
    return [c["id"] for c in duban.ok("case", "list", *args, "--json").json]


@pytest.fixture
def office(duban: Duban) -> dict[str, Any]:
    """A supervision case being handled (办理中), a complaint being handled (办理中) by 区财政局, and
    a supervision case still waiting to be signed for (已交办); a tick sent notices."""
    def open_(*args: str) -> int:
        return int(duban.ok("case", "open", *args, "--json", now=NOW, actor="wang").json["id"])

    handled = open_("supervision", "--title", "台帐", "--unit", "区发改局", "--due", "15wd")
    duban.ok("case", "fire", str(handled), "accept", now=NOW, actor="fgj")
    complaint = open_("complaint", "--title", "噪音", "--unit", "区财政局")
    duban.ok("case", "fire", str(complaint), "dispatch", now=NOW, actor="wang")
    duban.ok("case", "fire", str(complaint), "accept", now=NOW, actor="czj")
    waiting = open_("supervision", "--title", "清单", "--unit", "区市场监管局", "--co-unit", "区发改局", "--due", "15wd")
    duban.ok("tick", now="2026-03-04T09:00")
    return {"handled": handled, "complaint": complaint, "waiting": waiting}


class TestCaseListFilters:
    def test_an_unknown_state_lists_the_states(self, duban: Duban, office: dict[str, Any]) -> None:
        refused(duban, "case", "list", "--state", "bogus", code=2, says=("bogus", "办理中 in_progress", "已交办 assigned"))

    def test_an_unknown_workflow_lists_the_workflows(self, duban: Duban, office: dict[str, Any]) -> None:
        refused(duban, "case", "list", "--workflow", "bogus", code=2, says=("bogus", "supervision", "complaint"))

    def test_an_unknown_unit_names_the_closest(self, duban: Duban, office: dict[str, Any]) -> None:
        refused(duban, "case", "list", "--unit", "不存在局", code=3, says=("不存在局", "区发改局"))
        refused(duban, "case", "list", "--unit", "区发该局", code=3, says=("最接近", "区发改局"))

    def test_a_state_of_another_workflow_only(self, duban: Duban, office: dict[str, Any]) -> None:
        """`--workflow opinion --state in_progress`: opinion has no such state; its own are listed."""
        refused(duban, "case", "list", "--workflow", "opinion", "--state", "in_progress", code=2,
                says=("opinion", "已登记 registered"))

    def test_a_state_label_matches_every_workflows_state_of_that_label(self, duban: Duban,
                                                                      office: dict[str, Any]) -> None:
        assert ids(duban, "--state", "办理中") == [office["handled"], office["complaint"]]
        assert ids(duban, "--state", "in_progress") == [office["handled"], office["complaint"]]
        assert ids(duban, "--state", "办理中", "--workflow", "supervision") == [office["handled"]]
        assert ids(duban, "--state", "已交办") == [office["waiting"]]
        assert ids(duban, "--workflow", "效能投诉") == [office["complaint"]]  # a workflow by its label

    def test_a_state_no_case_has_reached_lists_nothing(self, duban: Duban, office: dict[str, Any]) -> None:
        """整改中 exists (rectification), though no case was ever opened with it: an empty list, exit 0."""
        assert ids(duban, "--state", "整改中") == []
        assert ids(duban, "--workflow", "rectification") == []

    def test_a_unit_filter_takes_co_units_and_canonical_names(self, duban: Duban, office: dict[str, Any]) -> None:
        assert ids(duban, "--unit", " 区发改局") == [office["handled"], office["waiting"]]
        assert ids(duban, "--unit", "区财政局", "--state", "办理中") == [office["complaint"]]


class TestNoticeListFilters:
    def test_an_unknown_unit(self, duban: Duban, office: dict[str, Any]) -> None:
        refused(duban, "notice", "list", "--unit", "不存在局", code=3, says=("不存在局", "区发改局"))

    def test_an_unknown_case(self, duban: Duban, office: dict[str, Any]) -> None:
        refused(duban, "notice", "list", "--case", "999", code=3, says=("999",))
        # past the largest id a case can have: a usage error naming the range, not a crash
        refused(duban, "notice", "list", "--case", "99999999999999999999", code=2, says=("2147483647",))

    def test_known_filters_list_the_notices(self, duban: Duban, office: dict[str, Any]) -> None:
        """The 催签 of the unsigned case went to 区市场监管局; a unit, a role and a case each filter."""
        to_unit = duban.ok("notice", "list", "--unit", "区市场监管局", "--json").json
        assert to_unit and {n["case_id"] for n in to_unit} == {office["waiting"]}
        of_case = duban.ok("notice", "list", "--case", str(office["waiting"]), "--json").json
        assert {n["id"] for n in to_unit} <= {n["id"] for n in of_case}
        assert duban.ok("notice", "list", "--unit", "区财政局", "--json").json == []  # known, nothing sent: empty
        assert duban.ok("notice", "list", "--unit", "office", "--json").code == 0


class TestLabels:
    def test_a_trigger_by_its_label(self, duban: Duban) -> None:
        """`case fire N 签收` fires accept; the event records the identifier."""
        case_id = str(duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "15wd",
                               "--json", now=NOW, actor="wang").json["id"])
        shown = duban.ok("case", "fire", case_id, "签收", "--json", now=NOW, actor="fgj").json
        assert shown["state"] == "in_progress"
        assert duban.ok("case", "history", case_id, "--json").json[-1]["trigger"] == "accept"
        suspended = duban.ok("case", "fire", case_id, "挂起", "--note", "等待上级答复", "--json", now=NOW, actor="wang").json
        assert suspended["suspended"] is True

    def test_a_known_trigger_not_allowed_now(self, duban: Duban) -> None:
        """签收 exists but the case is already signed for: refused as not allowed in this state."""
        case_id = str(duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "15wd",
                               "--json", now=NOW, actor="wang").json["id"])
        duban.ok("case", "fire", case_id, "签收", now=NOW, actor="fgj")
        refused(duban, "case", "fire", case_id, "签收", code=4, says=("accept", "in_progress"), actor="fgj")

    def test_a_trigger_that_does_not_exist(self, duban: Duban) -> None:
        """A name that is neither a trigger nor a label says it does not exist, with what is allowed now
        by label and identifier."""
        case_id = str(duban.ok("case", "open", "supervision", "--title", "台帐", "--unit", "区发改局", "--due", "15wd",
                               "--json", now=NOW, actor="wang").json["id"])
        run = refused(duban, "case", "fire", case_id, "受理", code=4, says=("没有操作 '受理'", "签收 accept"), actor="fgj")
        assert "not allowed" not in run.stderr
