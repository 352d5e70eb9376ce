"""The QLoRA seed example (batch 2, accumulation 4, rate 2e-4 on instruction data)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

import finetune_hub as fh  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import local_qlora_seed  # noqa: E402

HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


@pytest.mark.skipif(HAS_BNB, reason="bitsandbytes is installed")
def test_4bit_without_bitsandbytes_is_refused_naming_the_extra(tmp_path):
    with pytest.raises(fh.ValidationError) as info:
        local_qlora_seed.main(workdir=tmp_path, progress=False)
    assert 'pip install "finetune-hub[qlora]"' in str(info.value.report.errors)


@pytest.mark.slow
def test_seed_recipe_runs_a_few_steps_on_the_default_model(tmp_path):
    job = local_qlora_seed.main(
        workdir=tmp_path, quantization="4bit" if HAS_BNB else None, max_steps=2, progress=False
    )
    assert job.status is fh.JobStatus.SUCCEEDED
    assert [m.step for m in job.metrics()] == [1, 2]
    assert Path(job.result.id, "adapter_model.safetensors").is_file()
