"""Deployments that expire: deploy(ttl=...) records an expiry; `deployments --expired` lists the
deployments past it with what they have cost, and `reap` (or fh.reap_expired) deletes each one
exactly once, a dry run first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import finetune_hub as fh
from finetune_hub.cli.main import main

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


@pytest.fixture
def model(fake_provider, tmp_path):
    job = fh.TuningJob(
        provider="fake",
        base_model="fake-base-1",
        training_file=SAMPLES / "chat_gozaru.jsonl",
        store=fh.JobStore(tmp_path / "store"),
    )
    job.sleep = lambda s: None
    job.submit()
    return job.wait(poll_interval=0, progress=False)


def later(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)


def test_deploy_records_an_expiry_and_a_repeat_keeps_it(model):
    before = dt.datetime.now(dt.UTC)
    d = model.deploy(confirm_cost=True, ttl=dt.timedelta(hours=2))
    expires = d.record.expires_at
    assert before + dt.timedelta(hours=2) <= expires <= later(2)
    again = model.deploy(confirm_cost=True)  # the same name: found, not made twice
    assert again.record.expires_at == expires
    with pytest.raises(ValueError, match="ttl"):
        model.deploy(confirm_cost=True, ttl=0)


def test_an_expired_deployment_is_reaped_exactly_once(model, fake_provider):
    store = model.job.store
    d = model.deploy(confirm_cost=True, ttl=3600)
    assert fh.reap_expired(store, now=later(0.5)) == []  # not yet
    plan = fh.reap_expired(store, dry_run=True, now=later(3))
    assert [(p.name, p.status) for p in plan] == [(d.name, "would delete")]
    assert plan[0].expired_for_hours == pytest.approx(2, abs=0.01)
    assert plan[0].accumulated_usd == pytest.approx(1.25 * 3, abs=0.01)  # since creation
    assert fake_provider.count("undeploy") == 0 and d.name in fake_provider.deployments
    done = fh.reap_expired(store, now=later(3))
    assert [(r.name, r.status) for r in done] == [(d.name, "deleted")]
    assert fake_provider.count("undeploy") == 1 and d.name not in fake_provider.deployments
    assert store.get_deployment(d.record.id).deleted_at is not None
    assert fh.reap_expired(store, now=later(4)) == []  # once
    assert fake_provider.count("undeploy") == 1


def test_a_failed_delete_is_reported_and_tried_again_next_time(model, fake_provider):
    store = model.job.store
    d = model.deploy(confirm_cost=True, ttl=60)
    fake_provider.fail_next("undeploy", status_code=403, message="not allowed today")
    first = fh.reap_expired(store, now=later(1))
    assert first[0].status == "failed" and "not allowed today" in first[0].error
    assert store.get_deployment(d.record.id).deleted_at is None
    second = fh.reap_expired(store, now=later(1))
    assert second[0].status == "deleted" and fake_provider.count("undeploy") == 2


@pytest.mark.parametrize("operation", ["get_deployment", "deploy"])
def test_a_deploy_refused_before_anything_was_made_is_not_listed_as_billing(
    model, fake_provider, operation
):
    """A sign-in failure on the look-up, or a create the provider refused (403), made nothing:
    the record is failed, not a `creating` deployment that `finetune-hub deployments` bills."""
    from finetune_hub.jobs.housekeeping import billing_deployments

    store = model.job.store
    fake_provider.fail_next(operation, status_code=403, message="sign-in failed")
    with pytest.raises(fh.ProviderError, match="sign-in failed"):
        model.deploy(confirm_cost=True, ttl=60)
    assert not fake_provider.deployments
    assert billing_deployments(store) == []
    assert fh.reap_expired(store, dry_run=True, now=later(1)) == []
    again = model.deploy(confirm_cost=True)  # a later deploy goes ahead as usual
    assert [b.record.name for b in billing_deployments(store)] == [again.name]


def test_the_cli_lists_expired_deployments_and_reaps_after_a_dry_run(
    model, fake_provider, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "250")
    home = str(tmp_path / "store")
    store = model.job.store
    d = model.deploy(confirm_cost=True, ttl=3600)
    assert main(["deployments", "--home", home]) == 0
    assert "in 59m" in capsys.readouterr().out  # the billing list shows the expiry
    assert main(["deployments", "--expired", "--home", home]) == 0
    assert "no deployment has expired" in capsys.readouterr().out
    store.update_deployment(d.record.id, expires_at=later(-2))
    assert main(["deployments", "--expired", "--home", home]) == 0
    out = capsys.readouterr().out
    assert d.name in out and "2h ago" in out and "would delete" in out
    assert main(["reap", "--home", home]) == 0
    assert "dry run: 1 would be deleted" in capsys.readouterr().out
    assert fake_provider.count("undeploy") == 0
    assert main(["reap", "--yes", "--home", home]) == 0
    assert "deleted 1 expired deployment(s)" in capsys.readouterr().out
    assert main(["reap", "--yes", "--home", home, "--json"]) == 0
    assert '"deployments": []' in capsys.readouterr().out
    assert fake_provider.count("undeploy") == 1
