"""`duban workflow list | show | validate | graph`: the workflow definitions.

Only click is imported at module level: the catalog (YAML, the engine's validation) loads
inside the commands.
"""

from __future__ import annotations

import click

from duban.commands.support import json_option, out


@click.group()
def workflow() -> None:
    """Workflow definitions: list, show, validate, graph."""


@workflow.command("list")
@json_option
def workflow_list(as_json: bool) -> None:
    """The workflows new cases can use (newest version of each)."""
    from duban.bootstrap import workflow_catalog
    from duban.present.output import table

    catalog = workflow_catalog()
    rows = [{"name": w.name, "version": w.version, "label": w.spec.label, "states": len(w.spec.states),
             "source": w.source} for w in (catalog.latest(n) for n in catalog.names())]
    out(rows, as_json, lambda: table(rows, [("name", "名称"), ("label", "流程"), ("version", "版本"), ("states", "状态数")]))


@workflow.command("show")
@click.argument("name")
@json_option
def workflow_show(name: str, as_json: bool) -> None:
    """States, triggers, deadlines and ladders of a workflow."""
    from duban.bootstrap import workflow_catalog
    from duban.present.workflow_text import describe

    catalog = workflow_catalog()
    wf = catalog.latest(name)
    # the office's reading of a case received on a rest day, with where it comes from (SPEC §16)
    rest = {"rest_day_start": catalog.rest_day_start, "source": catalog.rest_day_source}
    out({**wf.spec.model_dump(), "source": wf.source, "calendar": rest}, as_json,
        lambda: describe(wf) + f"\n\n休息日收件起算 rest_day_start: {rest['rest_day_start']} ({rest['source']})")


@workflow.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def workflow_validate(file: str, as_json: bool) -> None:
    """Check a workflow file; exit 4 naming the file, the path inside it and the reason."""
    from duban.workflows import load_file

    wf = load_file(file)
    result = {"file": file, "valid": True, "name": wf.name, "version": wf.version,
              "states": len(wf.spec.states), "triggers": len({t.trigger for t in wf.spec.transitions})}
    out(result, as_json, lambda: f"{file}: ok — {wf.name} v{wf.version}, {result['states']} states, {result['triggers']} triggers")


@workflow.command("graph")
@click.argument("name")
@json_option
def workflow_graph(name: str, as_json: bool) -> None:
    """The state diagram as Mermaid text."""
    from duban.bootstrap import workflow_catalog

    wf = workflow_catalog().latest(name)
    out({"name": wf.name, "version": wf.version, "mermaid": wf.mermaid()}, as_json, wf.mermaid)
