from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Sample files, copied from shared/data into the repo so a clone is self-contained.
SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def sample_copy(tmp_path: Path):
    """Copy a sample file into tmp_path and return the copy's path."""

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copy(SAMPLES / name, dst)
        return dst

    return copy


# -- the fault matrix (tests/test_fault_matrix.py): printed at the end of the session ------------
# A test marked `@pytest.mark.fault_matrix(row=..., column=..., group=...)` is one cell per
# group: `row`, `column` and `group` name its parameters (operation, fault, provider). A cell
# passes when every phase passed; a skipped one is "n/a" (its reason printed), not counted.
_CELLS: dict[str, dict[str, str]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fault_matrix(row, column, group): a cell of the printed fault matrix"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    marker = item.get_closest_marker("fault_matrix")
    params = getattr(getattr(item, "callspec", None), "params", None)
    if marker is None or params is None:
        return
    report = outcome.get_result()
    cell = _CELLS.setdefault(
        item.nodeid,
        {key: str(params[marker.kwargs[key]]) for key in ("row", "column", "group")},
    )
    if report.failed:
        cell["outcome"] = "failed"
    elif report.skipped and cell.get("outcome") != "failed":
        cell["outcome"] = "n/a"
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else ""
        cell["reason"] = str(reason).removeprefix("Skipped: ").removeprefix("n/a: ")
    elif report.when == "call" and report.passed:
        cell.setdefault("outcome", "passed")


def pytest_terminal_summary(
    terminalreporter: object, exitstatus: int, config: pytest.Config
) -> None:
    if not _CELLS:
        return
    cells = list(_CELLS.values())
    rows = list(dict.fromkeys(c["row"] for c in cells))
    columns = list(dict.fromkeys(c["column"] for c in cells))
    groups = sorted({c["group"] for c in cells})
    write = terminalreporter.write_line  # type: ignore[attr-defined]
    terminalreporter.section("fault matrix")  # type: ignore[attr-defined]
    write(f"providers: {', '.join(groups)}; cells: providers passed / providers run")
    width = max(len(r) for r in rows) + 2
    write(" " * width + "".join(f"{c:>12}" for c in columns))
    failed = []
    for row in rows:
        line = f"{row:<{width}}"
        for column in columns:
            here = [c for c in cells if c["row"] == row and c["column"] == column]
            counted = [c for c in here if c.get("outcome") != "n/a"]
            passed = sum(c.get("outcome") == "passed" for c in counted)
            failed += [c for c in counted if c.get("outcome") != "passed"]
            line += f"{f'{passed}/{len(counted)}' if counted else 'n/a':>12}"
        write(line)
    total = [c for c in cells if c.get("outcome") != "n/a"]
    write(f"{len(total) - len(failed)}/{len(total)} cells passed")
    na = [c for c in cells if c.get("outcome") == "n/a"]
    skipped = {f"{c['group']} {c['row']}: {c.get('reason', '')}" for c in na}
    for reason in sorted(skipped):
        write(f"  not counted: {reason}")
    for c in failed:
        write(f"  FAILED: {c['group']} {c['row']} under {c['column']}")
