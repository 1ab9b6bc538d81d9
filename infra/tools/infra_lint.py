"""Stdlib-only checks for scripts/check-infra (no PyYAML: YAML is read by the Go tools).

    python3 infra/tools/infra_lint.py settings            # GUARDSTREAM_* names the worker knows
    python3 infra/tools/infra_lint.py metrics FILE...     # PromQL in FILEs uses only real metrics
    python3 infra/tools/infra_lint.py dashboard JSON OUT  # structure; writes its PromQL as rules
                                                          # to OUT for `promtool check rules`
Names come from worker/config.py and worker/metrics.py, read with `ast` (nothing imported).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Series that do not come from the worker: Prometheus' own and kube-state-metrics'.
EXTERNAL_METRICS = {"up", "kube_pod_status_ready"}
# Labels that Prometheus adds to every scraped series (target labels).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
}


def settings_names() -> set[str]:
    tree = ast.parse((ROOT / "worker/config.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):  # ENV_PREFIX, CONFIG_FILE_ENV, ...
            value = node.value
            if (
                isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and value.value.startswith("GUARDSTREAM_")
                and not value.value.endswith("_")
            ):
                names.add(value.value)
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            for item in node.body:
                if (
                    isinstance(item, ast.AnnAssign)
                    and isinstance(item.target, ast.Name)
                    and item.target.id != "model_config"
                ):
                    names.add("GUARDSTREAM_" + item.target.id.upper())
            for call in ast.walk(node):  # validation_alias=AliasChoices("GUARDSTREAM_...", ...)
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "AliasChoices":
                    names.update(
                        str(arg.value)
                        for arg in call.args
                        if isinstance(arg, ast.Constant)
                        and str(arg.value).startswith("GUARDSTREAM_")
                    )
    return names


def exposed_metrics() -> dict[str, set[str]]:
    """Exposition name -> label names, for every metric in worker/metrics.py."""
    tree = ast.parse((ROOT / "worker/metrics.py").read_text())
    out: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") in SUFFIXES):
            continue
        if not (node.args and isinstance(node.args[0], ast.Constant)):
            continue
        name = str(node.args[0].value)
        labels: set[str] = set()
        label_node = node.args[2] if len(node.args) > 2 else None
        for kw in node.keywords:
            if kw.arg == "labelnames":
                label_node = kw.value
        if isinstance(label_node, (ast.List, ast.Tuple)):
            labels = {str(e.value) for e in label_node.elts if isinstance(e, ast.Constant)}
        for suffix in SUFFIXES[node.func.id]:
            extra = {"le"} if suffix == "_bucket" else set()
            out[name + suffix] = labels | extra
    if not out:
        raise SystemExit("no metrics found in worker/metrics.py")
    return out


def check_promql(expr: str, metrics: dict[str, set[str]], where: str) -> list[str]:
    problems = []
    # Drop strings and {{ templates }} so label values are not taken for metric names.
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for match in re.finditer(r"\b(guardstream_[a-zA-Z0-9_]*)\b(\{[^}]*\})?", bare):
        name, matchers = match.group(1), match.group(2)
        if name not in metrics:
            problems.append(f"{where}: {name} is not exposed by worker/metrics.py")
            continue
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers or ""):
            if label not in metrics[name] | TARGET_LABELS:
                problems.append(f"{where}: {name} has no label {label!r}")
    for name in re.findall(r"\b([a-z_][a-z0-9_]*)\s*\{", bare):
        if not name.startswith("guardstream_") and name not in EXTERNAL_METRICS | {"by", "without"}:
            problems.append(f"{where}: unknown metric {name}")
    return problems


def exprs_of_rules_file(path: Path) -> list[tuple[str, str]]:
    """`expr:` values of a Prometheus rules file, without a YAML parser (block or inline)."""
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2).strip()
        if rest and rest[0] not in "|>":
            out.append((f"{path.name}:{i + 1}", rest.strip("'\"")))
            continue
        body = []
        for nxt in lines[i + 1 :]:
            if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent:
                break
            body.append(nxt.strip())
        out.append((f"{path.name}:{i + 1}", " ".join(body)))
    return out


def dashboard_targets(dash: dict) -> list[tuple[str, str]]:
    out = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            for target in panel.get("targets", []):
                title = f"panel {panel.get('id')} {panel.get('title')!r}"
                where = f"{title} target {target.get('refId')}"
                out.append((where, target.get("expr", "")))

    walk(dash.get("panels", []))
    return out


def cmd_metrics(paths: list[str]) -> int:
    metrics = exposed_metrics()
    problems, count = [], 0
    for arg in paths:
        path = Path(arg)
        if path.suffix == ".json":
            exprs = dashboard_targets(json.loads(path.read_text()))
        else:
            exprs = exprs_of_rules_file(path)
        for where, expr in exprs:
            count += 1
            problems += check_promql(expr, metrics, f"{path.name}: {where}")
    for p in problems:
        print(p)
    if not problems:
        families = len({re.sub(r"_(total|created|bucket|sum|count)$", "", m) for m in metrics})
        print(f"{count} expressions use only the {families} metric families of worker/metrics.py")
    return 1 if problems else 0


def cmd_dashboard(path: str, rules_out: str) -> int:
    dash = json.loads(Path(path).read_text())
    problems = []
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            problems.append(f"missing top-level {key!r}")
    ids: list[int] = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            ids.append(panel.get("id"))
            walk(panel.get("panels", []))
            if panel.get("type") != "row":
                if "gridPos" not in panel:
                    problems.append(f"panel {panel.get('id')} has no gridPos")
                if not panel.get("targets"):
                    problems.append(f"panel {panel.get('id')} {panel.get('title')!r}: no targets")
                uid = (panel.get("datasource") or {}).get("uid")
                if uid != "${datasource}":
                    problems.append(f"panel {panel.get('id')}: datasource must be ${{datasource}}")

    walk(dash.get("panels", []))
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"panel ids must be unique and set: {ids}")
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    # PromQL of every target as a recording rule, Grafana variables replaced by values.
    rules = []
    for i, (where, expr) in enumerate(dashboard_targets(dash)):
        for var in re.findall(r"\$\{?(\w+)", expr):
            if not var.startswith("__") and var not in variables:
                problems.append(f"{where}: undefined variable ${var}")
        promql = expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        promql = re.sub(r"\$\{?\w+\}?", ".*", promql)
        rules.append({"record": f"dashboard:target_{i}", "expr": promql})
    Path(rules_out).write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    for p in problems:
        print(p)
    if not problems:
        print(f"{len(ids)} panels, {len(rules)} queries, variables {sorted(variables)}")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["settings"]:
        print("\n".join(sorted(settings_names())))
        return 0
    if argv[:1] == ["metrics"] and len(argv) > 1:
        return cmd_metrics(argv[1:])
    if argv[:1] == ["dashboard"] and len(argv) == 3:
        return cmd_dashboard(argv[1], argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
