"""The case operations from the command line: `case fire ID instruct|urge|watch|unwatch`,
`case attach ID FILE`, and `notice list` with its 已读 column — each refusal exit 4 (role,
closed case) with nothing changed, and `audit verify --state` still replaying every case."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Duban, row_counts

NOW = "2027-03-01T09:00:00+08:00"


def test_instruct_urge_watch_and_attach_from_the_cli(duban: Duban, sqlite_url: str, tmp_path: Path) -> None:
    case_id = duban.ok("case", "open", "supervision", "--title", "重点项目推进", "--unit", "区发改局", "--due", "15wd",
                       "--json", now=NOW, actor="wang").json["id"]
    duban.ok("case", "fire", str(case_id), "instruct", "--note", "加快推进", now=NOW, actor="li")
    duban.ok("case", "fire", str(case_id), "催办", now=NOW, actor="wang")
    duban.ok("case", "fire", str(case_id), "watch", now=NOW, actor="wang")
    before = row_counts(sqlite_url)
    for trigger, actor in [("instruct", "zhao"), ("urge", "fgj"), ("watch", "wang")]:
        r = duban("case", "fire", str(case_id), trigger, "--note", "x", now=NOW, actor=actor)
        assert r.code == 4, (trigger, actor, r.stderr)
    evidence = tmp_path / "进展报告.txt"
    evidence.write_bytes(b"progress")
    assert duban("case", "attach", str(case_id), str(evidence), now=NOW, actor="czj").code == 4  # not its case
    assert row_counts(sqlite_url) == before
    added = duban.ok("case", "attach", str(case_id), str(evidence), "--json", now=NOW, actor="fgj").json
    assert added["name"] == "进展报告.txt" and len(added["sha256"]) == 64
    listed = duban.ok("notice", "list", now=NOW).stdout
    assert "领导批示" in listed and "催办通知" in listed and "未读" in listed
    history = duban.ok("case", "history", str(case_id), now=NOW).stdout
    assert "领导批示" in history and "关注" in history and "添加附件" in history
    verified = duban("audit", "verify", "--state", now=NOW)
    assert verified.code == 0, verified.stderr
