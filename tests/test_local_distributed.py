"""Several processes for one local job: torchrun with DDP (and FSDP) on CPU over gloo, on a tiny
model built in code.

Why the tolerance is tight. With the same global batch (1 process x batch 8 against 2 processes
x batch 4), each step sees the same examples, and the loss is the sum over every trained token of
the global batch divided by their global count (DDP averages the ranks' gradients, each rank
scales by the world size), so both runs compute the same gradient by construction; with
lora_dropout 0 nothing random differs. What is left is float32 rounding: the ranks pad to other
widths and the all-reduce adds two partial gradients, so sums run in another order (relative
error ~1e-7 per operation; measured: 4e-8 to 1e-7 on the losses of 4 steps). rel=1e-5 is 100x
that, and 1,000x below the change of the loss in one step (~1e-2): a wrong split of the batch or
a wrong scaling (a mean of per-rank means, the world size twice) fails it.
"""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from local_support import LOCAL_QUESTIONS, write_tiny_chat  # noqa: E402

import finetune_hub as fh  # noqa: E402
from finetune_hub.providers.local.distributed import launch_command  # noqa: E402
from finetune_hub.providers.local.runner import RunDir, write_json_atomic  # noqa: E402
from finetune_hub.providers.local.tiny import build_tiny_model  # noqa: E402
from finetune_hub.providers.local.train import TrainConfig, Trainer  # noqa: E402

STEPS = 4
HP = {
    "learning_rate": 5e-3,
    "lora_rank": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,  # dropout masks would differ between the runs
    "seed": 1,
    "max_seq_length": 64,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("local-distributed")
    return {
        "model": str(build_tiny_model(root / "model", [*LOCAL_QUESTIONS, "yes, gozaru!"])),
        "chat": str(write_tiny_chat(root / "chat.jsonl")),
    }


@pytest.fixture(scope="module")
def one_process(tiny, tmp_path_factory):
    """The reference: one process, batch 8, in this process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("one") / "run"
    path.mkdir()
    spec = {"base_model": tiny["model"], "training_file": tiny["chat"], "method": "sft"}
    spec["options"] = {"max_steps": STEPS, "save_steps": 2}
    hp = {**HP, "batch_size": 8}
    write_json_atomic(path / "job.json", {"key": "k", "spec": spec, "hyperparameters": hp})
    run = RunDir(path)
    trainer = Trainer(run, TrainConfig.from_job(run.job()))
    trainer.setup()
    assert trainer.fit() == "succeeded"
    torch.set_num_threads(before)
    return run


def two_process_job(tmp_path, tiny, **options) -> fh.TuningJob:
    job = fh.TuningJob(
        provider="local",
        base_model=tiny["model"],
        training_file=tiny["chat"],
        hyperparameters={
            **HP,
            "per_device_train_batch_size": 4,
            "max_steps": STEPS,
            "save_steps": 2,
        },  # fmt: skip
        options={
            "output_dir": str(tmp_path / "runs"),
            "num_threads": 1,
            "num_processes": 2,
            **options,
        },  # fmt: skip
        store=fh.JobStore(tmp_path / "home"),
    )
    job.sleep = lambda s: time.sleep(min(s, 0.2))
    return job


def assert_same_run(one: RunDir, two: RunDir) -> None:
    from safetensors.torch import load_file

    a = [m["train_loss"] for m in one.metrics()]
    b = [m["train_loss"] for m in two.metrics()]
    assert len(a) == len(b) == STEPS
    assert b == pytest.approx(a, rel=1e-5)
    assert a[-1] < a[0] - 0.1  # it learned: the comparison is not between two idle runs
    wa = load_file(str(one.adapter_dir / "adapter_model.safetensors"))
    wb = load_file(str(two.adapter_dir / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-6)


def test_two_processes_on_gloo_reach_the_loss_of_one_with_the_same_global_batch(
    tmp_path, tiny, one_process
):
    job = two_process_job(tmp_path, tiny)
    assert job.validate().ok
    model = job.submit().wait(timeout=300, poll_interval=0.2, progress=False)
    run = RunDir(job.provider_job_id)
    assert_same_run(one_process, run)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.path.name]  # one run folder
    assert model.id == str(run.adapter_dir) and (run.adapter_dir / "README.md").is_file()
    assert [c.step for c in job.checkpoints()] == [2, 4]  # written once, by rank 0
    messages = [e.message for e in job.events()]
    assert "starting 2 training processes through torchrun" in messages
    assert any("x 2 processes (ddp)" in m for m in messages)
    assert sum(m.startswith("step 4/4") for m in messages) == 1
    assert "| processes | 2 |" in (run.adapter_dir / "README.md").read_text()


@pytest.mark.slow
def test_fsdp_shards_the_model_and_reaches_the_same_loss(tmp_path, tiny, one_process):
    job = two_process_job(tmp_path, tiny, distributed="fsdp")
    job.submit().wait(timeout=300, poll_interval=0.2, progress=False)
    run = RunDir(job.provider_job_id)
    assert_same_run(one_process, run)
    assert any("x 2 processes (fsdp)" in e.message for e in job.events())


@pytest.mark.slow
def test_a_failure_in_the_ranks_fails_the_run_with_its_message(tmp_path, tiny):
    job = two_process_job(tmp_path, tiny, target_modules=["no_such_proj"])
    job.submit()
    with pytest.raises(fh.JobFailed):
        job.wait(timeout=300, poll_interval=0.2, progress=False)
    assert "no_such_proj" in job.record.error
    assert not RunDir(job.provider_job_id).adapter_dir.exists()


def test_launch_commands_for_one_and_several_machines():
    one = launch_command("runs/ftj_1", {"num_processes": 4})
    assert one[1:3] == ["-m", "torch.distributed.run"]
    assert one[3:6] == ["--standalone", "--nproc-per-node", "4"]
    assert one[-3:] == ["finetune_hub.providers.local.worker", "--rank", "runs/ftj_1"]
    two = launch_command(
        "r",
        {"num_processes": 8, "num_machines": 2, "machine_rank": 1, "main_process_ip": "10.0.0.1"},
    )
    assert two[3:14] == [
        "--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1",
        "--master-addr", "10.0.0.1", "--master-port", "29500", "-m",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"num_machines": 2}, "needs main_process_ip"),
        ({"machine_rank": 1}, "must be below num_machines=1"),
        ({"num_procesess": 2}, "did you mean 'num_processes'?"),
    ],
)
def test_distributed_options_are_checked(options, expected):
    from finetune_hub.providers.base import make_backend

    with pytest.raises(fh.OptionsError, match=expected):
        make_backend("local", options)
