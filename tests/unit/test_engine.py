"""The engine's decisions without a database: opening, firing triggers and firing timers,
on a manual clock and the real working-day calendar (SPEC §4.1, §5, §6.2)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from duban.clock import ManualClock
from duban.engine.calendar import WorkingCalendar
from duban.engine.model import Case, Outcome, TimerSpec
from duban.engine.service import Actor, DueTimer, Engine
from duban.engine.workflow import Workflow
from duban.errors import GuardRejectedError, PermissionDeniedError, TransitionNotAllowedError, UsageError
from duban.exports.calendar_files import read_calendar_file, seed_from_chinesecalendar
from duban.workflows import SHIPPED_DIR, load_file

TZ = ZoneInfo("Asia/Shanghai")
DATA = Path(__file__).parent / "data"
SEED = seed_from_chinesecalendar()
CALENDAR = WorkingCalendar.from_days(((d.day, d.kind) for d in SEED.days), SEED.years)

WANG = Actor("wang", "office")
LI = Actor("li", "leader")
ZHAO = Actor("zhao", "inspector")
FGJ = Actor("fgj", "unit", "区发改局")
CZJ = Actor("czj", "unit", "区财政局")
SCJ = Actor("scj", "unit", "区市场监管局")
LEAD, CO = "区发改局", "区财政局"


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ)


@pytest.fixture(scope="module")
def wf() -> Workflow:
    return load_file(SHIPPED_DIR / "supervision.yaml")


@pytest.fixture
def engine() -> Engine:
    return Engine(CALENDAR, TZ)


@pytest.fixture
def clock() -> ManualClock:
    """Wednesday 2026-09-30 09:00, the eve of the National Day holiday (SPEC §5.3)."""
    return ManualClock(local(2026, 9, 30, 9, 0))


def open_case(engine: Engine, wf: Workflow, clock: ManualClock, due: str = "5wd") -> Outcome:
    out = engine.open_case(wf, title="建立政策问题台帐", lead_unit=LEAD, co_units=[CO], due=due, values={},
                           actor=WANG, now=clock.now())
    out.case.id = 1  # what storage would give it
    return out


def timer(opened: Outcome, deadline: str, rung: int) -> DueTimer:
    spec = next(t for t in opened.arm if (t.deadline, t.rung) == (deadline, rung))
    return DueTimer(id=100 + rung, case_id=1, deadline=deadline, rung=rung, due_at=spec.due_at)


def arm_local(out: Outcome) -> list[tuple[str, int, datetime, bool]]:
    return [(t.deadline, t.rung, t.due_at.astimezone(TZ), t.approximate) for t in out.arm]


def in_progress(engine: Engine, wf: Workflow, clock: ManualClock) -> tuple[Outcome, Case]:
    opened = open_case(engine, wf, clock)
    clock.advance(hours=1)
    engine.fire(wf, opened.case, "accept", actor=FGJ, now=clock.now())
    return opened, opened.case


class TestOpening:
    def test_open_starts_in_assigned_with_its_due_instant(self, engine: Engine, wf: Workflow,
                                                          clock: ManualClock) -> None:
        """SPEC §5.3: opened 2026-09-30 with 5wd, the case is due at the end of 2026-10-13."""
        out = open_case(engine, wf, clock)
        case = out.case
        assert case.state == "assigned"
        assert case.due_at == local(2026, 10, 13, 23, 59, 59)
        assert case.due_at is not None and case.due_at.utcoffset() is not None
        assert case.escalation_level == 0 and not case.overdue
        assert [(e.action, e.actor, e.role, e.to_state) for e in out.events] == [("open", "wang", "office", "assigned")]

    def test_open_arms_one_timer_per_rung(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """Sign-for after 1 wd; yellow card 1 wd before; red card at the due instant; +3 wd; +10 wd (§6.2)."""
        out = open_case(engine, wf, clock)
        assert arm_local(out) == [
            ("sign_for", 0, local(2026, 10, 8, 23, 59, 59), False),  # Oct 1-7 holiday
            ("due", 0, local(2026, 10, 12, 23, 59, 59), False),  # Mon; Sat Oct 10 worked, Sun Oct 11 not
            ("due", 1, local(2026, 10, 13, 23, 59, 59), False),
            ("due", 2, local(2026, 10, 16, 23, 59, 59), False),
            ("due", 3, local(2026, 10, 27, 23, 59, 59), False),
        ]

    def test_absolute_day_ends_at_midnight_office_time(self, engine: Engine, wf: Workflow,
                                                       clock: ManualClock) -> None:
        """'5月底前' = --due 2027-05-31: due at 23:59:59 Beijing time, i.e. 15:59:59 UTC."""
        out = open_case(engine, wf, clock, due="2027-05-31")
        assert out.case.due_at == datetime(2027, 5, 31, 15, 59, 59, tzinfo=UTC)

    def test_year_without_calendar_counts_weekends_only_and_says_so(self, engine: Engine, wf: Workflow) -> None:
        """SPEC §5.4: opened 2026-12-28 with 5wd, 2027 has no data: 2027-01-01 counts, flagged approximate."""
        out = open_case(engine, wf, ManualClock(local(2026, 12, 28, 10, 0)))
        due = out.case.deadlines["due"]
        assert due.due_at == local(2027, 1, 4, 23, 59, 59)
        assert due.approximate
        assert not out.case.deadlines["sign_for"].approximate
        assert all(t.approximate for t in out.arm if t.deadline == "due")

    def test_a_unit_may_not_open(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """Only the office or a leader opens cases (交办)."""
        with pytest.raises(PermissionDeniedError, match="allowed roles: office, leader"):
            engine.open_case(wf, title="t", lead_unit=LEAD, co_units=[], due="5wd", values={}, actor=FGJ,
                             now=clock.now())

    @pytest.mark.parametrize(
        ("due", "message"),
        [
            ("2026-09-01", "already past"),
            ("5weeks", "deadline rule '5weeks'"),
            ("0wd", "positive whole number"),
            ("2026-02-30", "not a valid date"),
            (None, "needs due"),
        ],
    )
    def test_bad_due_is_a_usage_error(self, engine: Engine, wf: Workflow, clock: ManualClock, due: str | None,
                                      message: str) -> None:
        """A due date in the past, malformed or missing is refused before anything is decided."""
        with pytest.raises(UsageError, match=message):
            engine.open_case(wf, title="t", lead_unit=LEAD, co_units=[], due=due, values={}, actor=WANG,
                             now=clock.now())

    def test_lead_unit_cannot_also_be_a_co_unit(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """The lead unit (牵头单位) is not listed again as a co-unit (配合单位)."""
        with pytest.raises(UsageError, match="co-unit"):
            engine.open_case(wf, title="t", lead_unit=LEAD, co_units=[LEAD], due="5wd", values={}, actor=WANG,
                             now=clock.now())


class TestFiring:
    def test_lead_unit_accepts(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """签收 moves the case to in_progress, ends the sign-for deadline and records who did it."""
        opened = open_case(engine, wf, clock)
        clock.advance(hours=2)
        out = engine.fire(wf, opened.case, "accept", actor=FGJ, now=clock.now())
        assert out.case.state == "in_progress"
        assert out.cancel == ["sign_for"]
        assert out.arm == []
        assert out.case.deadlines["sign_for"].status == "ended"
        event = out.events[0]
        assert (event.action, event.actor, event.role, event.trigger) == ("fire", "fgj", "unit", "accept")
        assert (event.from_state, event.to_state, event.at) == ("assigned", "in_progress", clock.now())

    def test_co_unit_adds_progress_but_cannot_move_the_case(self, engine: Engine, wf: Workflow,
                                                           clock: ManualClock) -> None:
        """SPEC §16: accept and report are the lead unit's; a co-unit may add a progress note."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(PermissionDeniedError, match=r"lead unit \(牵头单位\) is '区发改局'"):
            engine.fire(wf, opened.case, "accept", actor=CZJ, now=clock.now())
        assert opened.case.state == "assigned"
        engine.fire(wf, opened.case, "accept", actor=FGJ, now=clock.now())
        noted = engine.fire(wf, opened.case, "report_progress", actor=CZJ, note="配合完成数据核对", now=clock.now())
        assert noted.case.state == "in_progress" and noted.events[0].actor == "czj"

    def test_another_units_user_is_refused(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """区市场监管局 may not sign for a case of 区发改局 and 区财政局."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(PermissionDeniedError, match="区市场监管局"):
            engine.fire(wf, opened.case, "accept", actor=SCJ, now=clock.now())
        assert opened.case.state == "assigned"

    @pytest.mark.parametrize("actor", [WANG, LI, ZHAO], ids=lambda a: a.role)
    def test_wrong_role_is_refused(self, engine: Engine, wf: Workflow, clock: ManualClock, actor: Actor) -> None:
        """Only a unit signs for a case; the message names the allowed role."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(PermissionDeniedError, match="allowed roles: unit"):
            engine.fire(wf, opened.case, "accept", actor=actor, now=clock.now())

    def test_trigger_not_allowed_lists_the_allowed_ones(self, engine: Engine, wf: Workflow,
                                                        clock: ManualClock) -> None:
        """Verifying an unsigned case is refused, and the error says what may be done now."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(TransitionNotAllowedError) as caught:
            engine.fire(wf, opened.case, "verify", actor=WANG, now=clock.now())
        assert caught.value.state == "assigned"
        assert any("accept" in a for a in caught.value.allowed)
        assert "accept" in str(caught.value)

    def test_people_cannot_fire_system_triggers(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """`expire` belongs to the timers: even the office cannot fire it by hand."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(TransitionNotAllowedError):
            engine.fire(wf, opened.case, "expire", actor=WANG, now=clock.now())

    def test_nobody_acts_as_system(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """An actor with the system role is refused by fire (only the scheduler fires timers)."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(PermissionDeniedError, match="system"):
            engine.fire(wf, opened.case, "accept", actor=Actor("system", "system"), now=clock.now())

    def test_reject_needs_a_note(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """退回重办 without a note is refused by its guard and leaves the case reported."""
        _, case = in_progress(engine, wf, clock)
        engine.fire(wf, case, "report", actor=FGJ, now=clock.now())
        with pytest.raises(GuardRejectedError, match="needs a note") as caught:
            engine.fire(wf, case, "reject", actor=WANG, note="  ", now=clock.now())
        assert caught.value.guard == "note_required"
        assert caught.value.field == "note"
        assert case.state == "reported"

    def test_reject_with_note_resumes_the_same_deadline(self, engine: Engine, wf: Workflow,
                                                        clock: ManualClock) -> None:
        """Back in in_progress, the due deadline runs again to the same instant with its rungs re-armed."""
        opened, case = in_progress(engine, wf, clock)
        reported = engine.fire(wf, case, "report", actor=FGJ, now=clock.now())
        assert reported.cancel == ["due"]
        out = engine.fire(wf, case, "reject", actor=WANG, note="数据不完整", now=clock.now())
        assert case.state == "in_progress"
        assert out.events[0].note == "数据不完整"
        assert case.due_at == local(2026, 10, 13, 23, 59, 59)
        assert [(t.deadline, t.rung, t.due_at) for t in out.arm] == [
            (t.deadline, t.rung, t.due_at) for t in opened.arm if t.deadline == "due"
        ]

    def test_report_then_verify_closes(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """审核办结 closes the case: final state, closed_at, no deadline running."""
        _, case = in_progress(engine, wf, clock)
        engine.fire(wf, case, "report", actor=FGJ, now=clock.now())
        clock.advance(days=1)
        engine.fire(wf, case, "verify", actor=WANG, now=clock.now())
        assert case.state == "verified"
        assert case.closed_at == clock.now()
        assert all(d.status != "running" for d in case.deadlines.values())

    def test_set_value_a_trigger_does_not_take(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """A data value a trigger does not take is a usage error about that value, naming what it takes."""
        opened = open_case(engine, wf, clock)
        with pytest.raises(UsageError, match="colour=…: 'accept' takes no data values") as caught:
            engine.fire(wf, opened.case, "accept", actor=FGJ, values={"colour": "red"}, now=clock.now())
        assert caught.value.field == "data.colour"


class TestAccountability:
    def overdue_case(self, engine: Engine, wf: Workflow, clock: ManualClock) -> Case:
        opened = open_case(engine, wf, clock)
        clock.set(local(2026, 10, 14, 9, 0))
        engine.fire_timer(wf, opened.case, timer(opened, "due", 1), clock.now())
        assert opened.case.state == "overdue"
        return opened.case

    @pytest.mark.parametrize(("measure", "message"), [(None, "needs a measure"), ("罚款", "unknown measure '罚款'")])
    def test_measure_is_required(self, engine: Engine, wf: Workflow, clock: ManualClock, measure: str | None,
                                 message: str) -> None:
        """问责 without one of the listed measures is refused and the allowed measures are named."""
        case = self.overdue_case(engine, wf, clock)
        values = {"measure": measure} if measure else {}
        with pytest.raises(GuardRejectedError, match=message) as caught:
            engine.fire(wf, case, "hold_accountable", actor=LI, values=values, now=clock.now())
        assert "诫勉谈话" in str(caught.value)
        assert case.state == "overdue"

    def test_reason_is_required(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """SPEC §16: a measure without a reason (--note) is refused; the case stays overdue."""
        case = self.overdue_case(engine, wf, clock)
        with pytest.raises(GuardRejectedError, match="needs a note") as caught:
            engine.fire(wf, case, "hold_accountable", actor=LI, values={"measure": "诫勉谈话"}, now=clock.now())
        assert caught.value.field == "note"
        assert case.state == "overdue" and case.closed_at is None

    def test_leader_holds_accountable(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """With a measure and a reason the case closes in accountability at level 5, the measure recorded."""
        case = self.overdue_case(engine, wf, clock)
        out = engine.fire(wf, case, "hold_accountable", actor=LI, note="逾期未办", values={"measure": "诫勉谈话"},
                          now=clock.now())
        assert case.state == "accountability"
        assert case.escalation_level == 5
        assert case.data["measure"] == "诫勉谈话"
        assert case.closed_at == clock.now()
        assert out.events[0].data == {"measure": "诫勉谈话"}

    def test_unit_cannot_hold_accountable(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """A unit may not decide its own accountability."""
        case = self.overdue_case(engine, wf, clock)
        with pytest.raises(PermissionDeniedError, match="leader, office"):
            engine.fire(wf, case, "hold_accountable", actor=FGJ, values={"measure": "诫勉谈话"}, now=clock.now())


class TestTimers:
    def test_yellow_card(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """1 wd before the due date: level 1, one audit event by system, one 预警提醒 to the lead unit."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 13, 9, 0))
        out = engine.fire_timer(wf, case, timer(opened, "due", 0), clock.now())
        assert case.state == "in_progress" and case.escalation_level == 1
        assert not case.overdue
        assert [(e.action, e.actor, e.role) for e in out.events] == [("escalate", "system", "system")]
        assert [(n.kind, n.recipient, n.level) for n in out.notices] == [("预警提醒", LEAD, 1)]

    def test_red_card_expires_the_case(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """Past the due instant: level 2, a 催办通知, and `expire` by system moves it to overdue."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 14, 0, 0, 1))
        out = engine.fire_timer(wf, case, timer(opened, "due", 1), clock.now())
        assert case.state == "overdue" and case.escalation_level == 2 and case.overdue
        assert [(e.action, e.actor, e.trigger, e.from_state, e.to_state) for e in out.events] == [
            ("escalate", "system", None, "in_progress", "in_progress"),
            ("fire", "system", "expire", "in_progress", "overdue"),
        ]
        assert [(n.kind, n.recipient) for n in out.notices] == [("催办通知", LEAD)]

    def test_supervision_notice_goes_to_unit_and_office(self, engine: Engine, wf: Workflow,
                                                       clock: ManualClock) -> None:
        """+3 wd: level 3, 督办通知 to the lead unit and to the office."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 17, 9, 0))
        out = engine.fire_timer(wf, case, timer(opened, "due", 2), clock.now())
        assert case.escalation_level == 3
        assert [(n.kind, n.recipient, n.level) for n in out.notices] == [("督办通知", LEAD, 3), ("督办通知", "office", 3)]

    def test_bulletin_goes_to_leader_and_office(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """+10 wd: level 4, 通报 to the leader and the office."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 28, 9, 0))
        out = engine.fire_timer(wf, case, timer(opened, "due", 3), clock.now())
        assert case.escalation_level == 4
        assert {(n.kind, n.recipient) for n in out.notices} == {("通报", "leader"), ("通报", "office")}

    def test_a_rung_escalates_only_once(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """Firing the same rung again (e.g. a retried sweep) adds no event and no notice."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 13, 9, 0))
        engine.fire_timer(wf, case, timer(opened, "due", 0), clock.now())
        again = engine.fire_timer(wf, case, timer(opened, "due", 0), clock.now())
        assert again.events == [] and again.notices == []
        assert case.escalation_level == 1

    def test_level_never_goes_down(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """A late yellow card after the red one leaves the case at level 2."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 14, 9, 0))
        engine.fire_timer(wf, case, timer(opened, "due", 1), clock.now())
        engine.fire_timer(wf, case, timer(opened, "due", 0), clock.now())
        assert case.escalation_level == 2

    def test_timer_of_an_ended_deadline_does_nothing(self, engine: Engine, wf: Workflow,
                                                     clock: ManualClock) -> None:
        """The sign-for reminder claimed after the unit signed changes nothing."""
        opened, case = in_progress(engine, wf, clock)
        out = engine.fire_timer(wf, case, timer(opened, "sign_for", 0), clock.now())
        assert (out.events, out.notices, out.arm) == ([], [], [])
        assert case.escalation_level == 0

    def test_rejected_late_report_expires_again_without_a_second_red_card(
        self, engine: Engine, wf: Workflow, clock: ManualClock
    ) -> None:
        """Overdue → report → reject: the expire rung fires again, but the red card is not repeated."""
        opened, case = in_progress(engine, wf, clock)
        clock.set(local(2026, 10, 14, 9, 0))
        engine.fire_timer(wf, case, timer(opened, "due", 1), clock.now())
        engine.fire(wf, case, "report", actor=FGJ, now=clock.now())
        out = engine.fire(wf, case, "reject", actor=WANG, note="未按要求整改", now=clock.now())
        rearmed = next(t for t in out.arm if t.rung == 1)
        again = engine.fire_timer(wf, case, replace(timer(opened, "due", 1), id=200, due_at=rearmed.due_at),
                                  clock.now())
        assert case.state == "overdue"
        assert [e.action for e in again.events] == ["fire"]
        assert again.notices == []


class TestRecompute:
    def test_importing_the_year_moves_an_approximate_deadline(self, wf: Workflow) -> None:
        """With 2027's schedule (Jan 1 a holiday) the 5wd case of 2026-12-28 is due 2027-01-05, and says why."""
        opened = open_case(Engine(CALENDAR, TZ), wf, ManualClock(local(2026, 12, 28, 10, 0)))
        y2027 = read_calendar_file(DATA / "calendar-2027.yaml")
        full = WorkingCalendar.from_days(
            [*((d.day, d.kind) for d in SEED.days), *((d.day, d.kind) for d in y2027.days)],
            (*SEED.years, *y2027.years),
        )
        now = local(2026, 12, 29, 9, 0)
        out = Engine(full, TZ).recompute(wf, opened.case, now, "2027 calendar imported")
        assert out is not None
        due = opened.case.deadlines["due"]
        assert (due.due_at, due.approximate) == (local(2027, 1, 5, 23, 59, 59), False)
        assert opened.case.due_at == due.due_at
        [event] = out.events
        assert (event.action, event.actor, event.note) == ("recompute", "system", "2027 calendar imported")
        assert event.data["deadline"] == "due" and event.data["approximate"] is False
        assert out.cancel == ["due"]
        assert all(not t.approximate for t in out.arm)
        assert isinstance(out.arm[0], TimerSpec)

    def test_nothing_to_recompute_returns_none(self, engine: Engine, wf: Workflow, clock: ManualClock) -> None:
        """A case with exact deadlines is left alone (no event)."""
        opened = open_case(engine, wf, clock)
        assert engine.recompute(wf, opened.case, clock.now(), "calendar imported") is None


class TestPurity:
    def test_engine_does_not_import_the_database_layer(self) -> None:
        """duban.engine decides without SQLModel or SQLAlchemy, so it is testable and reusable alone."""
        code = (
            "import importlib, pkgutil, sys, duban.engine\n"
            "for m in pkgutil.iter_modules(duban.engine.__path__):\n"
            "    importlib.import_module('duban.engine.' + m.name)\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'sqlmodel', 'sqlalchemy'}))\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
