"""The case use cases on the in-memory unit of work: open, fire, refusals, the version check,
a step that touches no timer, and the views — no database, milliseconds (issue 12)."""

from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from duban.engine.calendar import WorkingCalendar
from duban.engine.ports import UnitOfWork
from duban.engine.service import Engine
from duban.engine.workflow import Workflow
from duban.errors import ConcurrencyError, NotFoundError, PermissionDeniedError, TransitionNotAllowedError
from duban.service.cases import CaseService, Transitioned
from duban.testing import FakeStore, FakeUnitOfWork, ManualClock
from duban.workflows import SHIPPED_DIR, load_file

TZ = ZoneInfo("Asia/Shanghai")
LEAD, CO = "区发改局", "区财政局"


@pytest.fixture(scope="module")
def wf() -> Workflow:
    return load_file(SHIPPED_DIR / "supervision.yaml")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ))  # a Monday


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(users={"wang": ("office", None), "fgj": ("unit", LEAD), "czj": ("unit", CO)},
                     units={LEAD, CO}, calendar=WorkingCalendar(frozenset(), frozenset(), frozenset({2026})))


@pytest.fixture
def service() -> CaseService:
    def engine(uow: UnitOfWork) -> Engine:
        return Engine(uow.calendar("day_one"), TZ)

    return CaseService(TZ, lambda: None, engine)


def open_case(service: CaseService, store: FakeStore, wf: Workflow, clock: ManualClock) -> int:
    with FakeUnitOfWork(store) as uow:
        case, _ = service.open_case(uow, wf, title="建立政策问题台帐", lead_unit=LEAD, co_units=[CO], due="5wd",
                                    values={}, actor="wang", now=clock.now())
    assert case.id is not None
    return case.id


def fire(service: CaseService, store: FakeStore, case_id: int, trigger: str, actor: str, clock: ManualClock,
         note: str = "", expected_version: int | None = None) -> Transitioned:
    with FakeUnitOfWork(store) as uow:
        _, step = service.step(uow, case_id, trigger, actor, note, None, expected_version, clock.now())
    return step


class TestOpen:
    def test_open_stores_the_case_its_timers_and_its_event(self, service: CaseService, store: FakeStore,
                                                           wf: Workflow, clock: ManualClock) -> None:
        """Opening pins the workflow and stores the case at version 1, its armed rungs and one audit event."""
        case_id = open_case(service, store, wf, clock)
        case = store.cases[case_id]
        assert (case.state, case.version, case.lead_unit, case.co_units) == ("assigned", 1, LEAD, [CO])
        assert (wf.name, wf.version) in store.pinned
        assert store.timers and all(t["status"] == "pending" for t in store.timers)
        assert [(e["action"], e["actor"], e["case_id"]) for e in store.events] == [("open", "wang", case_id)]

    def test_an_unknown_unit_opens_nothing(self, service: CaseService, store: FakeStore, wf: Workflow,
                                           clock: ManualClock) -> None:
        """A lead unit not in the directory is refused, and the store is left as it was."""
        with pytest.raises(NotFoundError), FakeUnitOfWork(store) as uow:
            service.open_case(uow, wf, title="t", lead_unit="没有的局", co_units=[], due="5wd", values={},
                              actor="wang", now=clock.now())
        assert (store.cases, store.pinned, store.events) == ({}, {}, [])


class TestFire:
    def test_an_allowed_trigger_moves_the_case_on(self, service: CaseService, store: FakeStore, wf: Workflow,
                                                  clock: ManualClock) -> None:
        """The lead unit's `accept` takes the case to in_progress at version 2, ends the sign-for rungs and is audited."""
        case_id = open_case(service, store, wf, clock)
        clock.advance(hours=1)
        step = fire(service, store, case_id, "签收", "fgj", clock)
        assert step == Transitioned(case_id, "accept", "fgj", "assigned", "in_progress", 2)
        assert store.cases[case_id].state == "in_progress"
        assert {t["status"] for t in store.timers if t["deadline"] == "sign_for"} == {"cancelled"}
        assert [e["trigger"] for e in store.events] == [None, "accept"]

    @pytest.mark.parametrize(("trigger", "actor", "refusal"), [
        ("accept", "wang", PermissionDeniedError),  # the office may not sign for the unit
        ("verify", "wang", TransitionNotAllowedError),  # nothing reported yet
        ("accept", "nobody", NotFoundError),  # not in the directory
    ])
    def test_a_refused_trigger_changes_nothing(self, service: CaseService, store: FakeStore, wf: Workflow,
                                               clock: ManualClock, trigger: str, actor: str,
                                               refusal: type[Exception]) -> None:
        """A trigger the rules refuse raises its refusal and leaves case, timers and events as they were."""
        case_id = open_case(service, store, wf, clock)
        before = copy.deepcopy((store.cases, store.timers, store.events))
        with pytest.raises(refusal):
            fire(service, store, case_id, trigger, actor, clock)
        assert (store.cases, store.timers, store.events) == before

    def test_a_step_that_touches_no_timer(self, service: CaseService, store: FakeStore, wf: Workflow,
                                          clock: ManualClock) -> None:
        """Reporting progress stays in in_progress, arms and cancels nothing, and is still a versioned, audited step."""
        case_id = open_case(service, store, wf, clock)
        fire(service, store, case_id, "accept", "fgj", clock)
        timers = copy.deepcopy(store.timers)
        clock.advance(days=1)
        step = fire(service, store, case_id, "report_progress", "fgj", clock, note="已完成调研")
        assert (step.from_state, step.state, step.version) == ("in_progress", "in_progress", 3)
        assert store.timers == timers
        assert store.events[-1]["trigger"] == "report_progress" and store.events[-1]["note"] == "已完成调研"


class TestConcurrency:
    def test_a_stale_case_is_not_written(self, service: CaseService, store: FakeStore, wf: Workflow,
                                         clock: ManualClock) -> None:
        """A case read before another step committed cannot be written: ConcurrencyError, nothing changes."""
        case_id = open_case(service, store, wf, clock)
        late = FakeUnitOfWork(store)
        with late:
            stale = late.cases.get(case_id)
        fire(service, store, case_id, "accept", "fgj", clock)
        assert stale is not None and stale.version == 1
        out = service.engine(late).fire(service.workflow_of(late.workflows, stale), stale, "accept",
                                        actor=service.actor(late.directory, "fgj"), now=clock.now())
        with pytest.raises(ConcurrencyError), FakeUnitOfWork(store) as uow:
            uow.cases.commit(out, clock.now())
        assert (store.cases[case_id].version, len(store.events)) == (2, 2)

    def test_the_expected_version_is_checked(self, service: CaseService, store: FakeStore, wf: Workflow,
                                             clock: ManualClock) -> None:
        """A step given the version its caller last saw is refused once the case has moved past it."""
        case_id = open_case(service, store, wf, clock)
        with pytest.raises(ConcurrencyError, match="version 1, not 7"):
            fire(service, store, case_id, "accept", "fgj", clock, expected_version=7)
        assert fire(service, store, case_id, "accept", "fgj", clock, expected_version=1).version == 2


class TestRead:
    def test_show_history_and_list(self, service: CaseService, store: FakeStore, wf: Workflow,
                                   clock: ManualClock) -> None:
        """The case as shown, its history and the list filtered by state and unit come from the same store."""
        case_id = open_case(service, store, wf, clock)
        second = open_case(service, store, wf, clock)
        fire(service, store, case_id, "accept", "fgj", clock)
        with FakeUnitOfWork(store) as uow:
            shown = service.show(uow, case_id)
            history = service.history(uow, case_id)
            listed = service.listing(uow, state="in_progress", unit=LEAD, workflow=None, overdue=None)
            nothing = service.listing(uow, state="reported", unit=None, workflow=None, overdue=None)
        assert (shown["id"], shown["state"], shown["version"]) == (case_id, "in_progress", 2)
        assert [e["trigger"] for e in history] == [None, "accept"]
        assert [c["id"] for c in listed] == [case_id] and second != case_id and nothing == []


def test_the_use_cases_run_without_the_database_layer() -> None:
    """Opening, firing and showing a case on the fake imports neither SQLAlchemy nor duban.storage."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "from tests.unit.test_service_cases import *\n"
        "from duban.engine.calendar import WorkingCalendar\n"
        "s = FakeStore(users={'wang': ('office', None), 'fgj': ('unit', LEAD)}, units={LEAD, CO},"
        " calendar=WorkingCalendar(frozenset(), frozenset(), frozenset({2026})))\n"
        "svc = CaseService(TZ, lambda: None, lambda uow: Engine(uow.calendar('day_one'), TZ))\n"
        "c = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=TZ))\n"
        "i = open_case(svc, s, load_file(SHIPPED_DIR / 'supervision.yaml'), c)\n"
        "fire(svc, s, i, 'accept', 'fgj', c)\n"
        "with FakeUnitOfWork(s) as uow:\n"
        "    svc.show(uow, i)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' or m.startswith('duban.storage')))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False, timeout=60)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "[]\n")
