"""The web dashboard: its data (progress, rows, costs), its read-only routes, and an end-to-end
run in a real headless Chromium (Playwright on the system's browser) over a store filled through
the fakes: jobs across providers, a loss chart, a billing deployment, and a page that refreshes
by itself. The screenshot is kept as a test artifact (build/test-artifacts/dashboard.png)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import finetune_hub as fh
from finetune_hub.dashboard.data import deployment_rows, job_rows, progress

pytest.importorskip("starlette", reason='the dashboard needs pip install "finetune-hub[team]"')

ROOT = Path(__file__).resolve().parents[1]
CHAT = ROOT / "examples" / "data" / "chat_gozaru.jsonl"
ARTIFACTS = Path(os.environ.get("FINETUNE_HUB_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
CHROMIUM = os.environ.get("FINETUNE_HUB_CHROMIUM", "/usr/bin/chromium")
INSTALL_BROWSER = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def fill(store: fh.JobStore, fake: Any, fake_openai: Any) -> dict[str, str]:
    """Jobs made through the fakes: one OpenAI job run to the end (its loss curve comes from
    the result file), one fake job succeeded and deployed, one running, one failed."""
    ids: dict[str, str] = {}
    openai_job = fh.TuningJob(
        provider="openai", base_model="gpt-4.1-mini-2025-04-14", training_file=CHAT, store=store
    )
    openai_job.sleep = lambda s: None
    openai_job.submit()
    ids["openai"] = openai_job.id
    for name in ("deployed", "running", "failed"):
        if name == "failed":
            fake.fail_job("the training data was rejected: line 7 has no assistant message")
        job = fh.TuningJob(
            provider="fake", base_model="fake-base-1", training_file=CHAT, store=store
        )
        ids[name] = job.submit().id
    fh.refresh_all(store=store)  # queued -> running everywhere (the failed one: failed)
    fh.refresh_all(store=store, job_ids=[ids["deployed"], ids["openai"]])
    for _ in range(20):  # the OpenAI fake runs on its clock: follow it to the end
        if store.require(ids["openai"]).status.is_terminal:
            break
        fake_openai.advance(600)
        fh.refresh_all(store=store, job_ids=[ids["openai"]])
    model = fh.TuningJob.attach(ids["deployed"], store=store).result
    deployment = model.deploy(confirm_cost=True)
    deployment.wait_ready(poll_interval=0.01)
    record = store.get_deployment(deployment.record.id)
    now = dt.datetime.now(dt.UTC)
    yesterday = now - dt.timedelta(hours=30)  # deployed 30 hours ago, meant to live a day
    expired = {"created_at": yesterday, "expires_at": now - dt.timedelta(hours=6)}
    store.save_deployment(record.model_copy(update=expired))
    fake.stall()  # the running job stops moving: a refresh 3 hours on finds it stalled
    later = store.transitions(ids["running"])[-1].at + dt.timedelta(hours=3)
    fh.refresh_all(store=store, job_ids=[ids["running"]], now=lambda: later)
    fake.stall(False)
    return ids


def test_progress_reads_n_of_m_or_the_last_step() -> None:
    running = fh.JobStatus.RUNNING
    assert progress(running, "Step 40/100: training loss=0.61", 40) == {
        "fraction": 0.4,
        "text": "step 40/100",
    }
    assert progress(running, "state running", 3) == {"fraction": None, "text": "step 3"}
    assert progress(fh.JobStatus.SUCCEEDED, None, None)["fraction"] == 1.0
    assert progress(running, None, None) == {"fraction": None, "text": ""}


def test_routes_are_read_only_and_serve_the_store(
    fake_provider: Any, fake_openai: Any, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from finetune_hub.dashboard import create_app

    store = fh.JobStore(tmp_path / "store")
    ids = fill(store, fake_provider, fake_openai)
    client = TestClient(create_app(store, refresh_seconds=3))
    page = client.get("/")
    assert page.status_code == 200 and '"refreshSeconds": 3' in page.text
    jobs = {j["id"]: j for j in client.get("/api/jobs").json()["jobs"]}
    assert set(jobs) == set(ids.values())
    assert jobs[ids["openai"]]["status"] == "succeeded" and jobs[ids["failed"]]["error"]
    assert jobs[ids["running"]]["progress"]["text"].startswith("step")
    assert jobs[ids["running"]]["guardrail"].startswith("stalled")  # found by refresh_all
    assert jobs[ids["openai"]]["guardrail"] == ""
    curve = client.get(f"/api/jobs/{ids['openai']}/metrics").json()
    assert len(curve["steps"]) > 3 and all(v is not None for v in curve["train_loss"])
    assert client.get("/api/jobs/ftj_000000000000/metrics").status_code == 404
    billing = client.get("/api/deployments").json()
    (d,) = billing["deployments"]
    assert d["hourly_usd"] == 1.25 and d["accumulated_usd"] == pytest.approx(37.5, abs=0.1)
    assert d["expired"] and d["expires"].startswith("expired 6h") and billing["expired"] == 1
    assert client.post("/api/jobs").status_code == 405
    assert client.get("/static/chart.umd.min.js").status_code == 200
    assert job_rows(store) and deployment_rows(store)["hourly_usd"] == 1.25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser_or_skip() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = 'Playwright is missing: pip install "finetune-hub[dev]"'
    if problem is None and not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        problem = f"no Chromium at {CHROMIUM}; install one with: {INSTALL_BROWSER}"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)  # CI installs the browser (.ci/run): this test always runs there
        pytest.skip(problem)
    return sync_playwright


def test_the_page_in_a_real_browser(fake_provider: Any, fake_openai: Any, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    import uvicorn

    from finetune_hub.dashboard import create_app

    store = fh.JobStore(tmp_path / "store")
    ids = fill(store, fake_provider, fake_openai)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, refresh_seconds=1), host="127.0.0.1", port=port,
                       log_level="warning")
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the dashboard did not start"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector(f"#jobs tr[data-job-id='{ids['openai']}']")
            table = page.inner_text("#jobs")
            for job_id in ids.values():
                assert job_id in table
            for text in ("openai", "fake", "succeeded", "running", "failed", "rejected", "step"):
                assert text in table
            # the loss chart of the OpenAI job, with its points
            page.click(f"#jobs tr[data-job-id='{ids['openai']}']")
            page.wait_for_function(
                f"window.lossChart && document.getElementById('chart-title').textContent"
                f" === '{ids['openai']}' && window.lossChart.data.labels.length > 3"
            )
            points = page.evaluate("window.lossChart.data.datasets[0].data.length")
            assert points == len(store.metrics(ids["openai"]))
            # the deployment still billing, with its hourly and accumulated cost
            billing = page.inner_text("#deployments")
            assert "$1.25" in billing and "$37.5" in billing and "1d 6h" in billing
            assert "1.25/hour now" in page.inner_text("#billing-total")
            assert "expired 6h" in billing and "1 past expiry" in page.inner_text("#billing-total")
            # the running job, stalled, carries its mark in the status cell
            mark = page.inner_text(f"#jobs tr[data-job-id='{ids['running']}'] .mark")
            assert mark.startswith("stalled")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            # it refreshes by itself: a change in the store shows without a reload
            store.record_status(ids["running"], fh.JobStatus.SUCCEEDED, "succeeded")
            row = f"#jobs tr[data-job-id='{ids['running']}'] .status"
            page.wait_for_function(
                f"document.querySelector(\"{row}\").textContent === 'succeeded'", timeout=15000
            )
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
