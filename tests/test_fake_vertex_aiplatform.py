"""FakeVertex driven by the real google-cloud-aiplatform over REST (`api_transport="rest"`):
pipeline jobs (a tiny spec and the RLHF template stand-in), models, endpoints, long-running
operations, predict and generateContent."""

from __future__ import annotations

import json
import urllib.request

import pytest

aiplatform = pytest.importorskip("google.cloud.aiplatform")  # ~3 s, once per session
from google.api_core import exceptions  # noqa: E402
from google.cloud import aiplatform_v1  # noqa: E402
from google.cloud.aiplatform.utils import resource_manager_utils  # noqa: E402

from finetune_hub.testing.vertex_fake_rlhf import rlhf_template  # noqa: E402

TINY = {
    "pipelineInfo": {"name": "tiny"},
    "schemaVersion": "2.1.0",
    "sdkVersion": "kfp-2.17.3",
    "components": {"comp-echo": {"executorLabel": "exec-echo"}},
    "deploymentSpec": {"executors": {"exec-echo": {"container": {"image": "python:3.11"}}}},
    "root": {
        "dag": {
            "tasks": {
                "second": {"componentRef": {"name": "comp-echo"}, "dependentTasks": ["first"]},
                "first": {"componentRef": {"name": "comp-echo"}},
            }
        },
        "inputDefinitions": {"parameters": {"greeting": {"parameterType": "STRING"}}},
    },
}


@pytest.fixture
def vertex(fake_vertex, monkeypatch):
    # PipelineJob.submit() asks Cloud Resource Manager (gRPC only, no endpoint override) for the
    # project number to check the pipeline bucket's owner; answer it locally.
    monkeypatch.setattr(
        resource_manager_utils,
        "get_project_number",
        lambda project, credentials=None: fake_vertex.project_number,
    )
    fake_vertex.init_aiplatform()
    return fake_vertex


def pipeline_service(fake):
    return aiplatform_v1.PipelineServiceClient(
        credentials=fake.credentials(),
        transport="rest",
        client_options={"api_endpoint": fake.url},
    )


def submit_tiny(vertex, tmp_path, job_id: str = "tiny-1"):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    job = aiplatform.PipelineJob(
        display_name="tiny",
        template_path=str(path),
        pipeline_root=f"gs://{vertex.bucket}/pipeline-root",
        parameter_values={"greeting": "hi"},
        job_id=job_id,
        labels={"finetune-hub-job": job_id},
    )
    job.submit()
    return job


def test_pipeline_job_runs_its_tasks_in_order(vertex, tmp_path):
    vertex.auto_advance = 0
    job = submit_tiny(vertex, tmp_path)
    sent = vertex.requests[[r.operation for r in vertex.requests].index("pipelineJobs.create")]
    assert sent.path.startswith("/v1/projects/finetune-hub-test/locations/us-central1/")
    assert sent.query == {"pipelineJobId": "tiny-1", "$alt": "json;enum-encoding=int"}
    assert sent.json["runtimeConfig"]["parameterValues"] == {"greeting": "hi"}
    assert job.state.name == "PIPELINE_STATE_PENDING"
    vertex.advance(30 + 60 + 1)
    tasks = {t.task_name: t.state.name for t in job.task_details}
    assert job.state.name == "PIPELINE_STATE_RUNNING"
    assert tasks == {"tiny": "RUNNING", "first": "SUCCEEDED", "second": "RUNNING"}
    vertex.advance(60)
    assert job.state.name == "PIPELINE_STATE_SUCCEEDED"
    assert job.labels == {"finetune-hub-job": "tiny-1"}


def test_pipeline_wire_uses_enum_numbers_only_when_asked(vertex, tmp_path):
    job = submit_tiny(vertex, tmp_path)
    url = f"{vertex.url}/v1/{job.resource_name}"
    auth = {"authorization": f"Bearer {vertex.token}"}
    as_int = json.load(
        urllib.request.urlopen(
            urllib.request.Request(url + "?%24alt=json%3Benum-encoding%3Dint", headers=auth)
        )
    )
    as_name = json.load(urllib.request.urlopen(urllib.request.Request(url, headers=auth)))
    assert isinstance(as_int["state"], int) and as_name["state"].startswith("PIPELINE_STATE_")


def test_pipeline_cancel_and_duplicate_ids(vertex, tmp_path):
    job = submit_tiny(vertex, tmp_path, "tiny-2")
    job.cancel()
    assert vertex.pipeline_job("tiny-2")["state"] == "PIPELINE_STATE_CANCELLING"
    vertex.advance(10)
    assert aiplatform.PipelineJob.get("tiny-2").state.name == "PIPELINE_STATE_CANCELLED"
    with pytest.raises(exceptions.Conflict):
        submit_tiny(vertex, tmp_path, "tiny-2")


def test_pipeline_create_500_after_it_took_effect_then_409(vertex, tmp_path):
    client = pipeline_service(vertex)
    parent = f"projects/{vertex.project}/locations/{vertex.location}"
    body = aiplatform_v1.PipelineJob(
        display_name="tiny",
        pipeline_spec=TINY,
        runtime_config={
            "gcs_output_directory": f"gs://{vertex.bucket}/root",
            "parameter_values": {"greeting": "hi"},
        },
    )
    vertex.inject("POST", "pipelineJobs.create", "500", after=True)
    with pytest.raises(exceptions.InternalServerError):
        client.create_pipeline_job(parent=parent, pipeline_job=body, pipeline_job_id="once")
    with pytest.raises(exceptions.Conflict):
        client.create_pipeline_job(parent=parent, pipeline_job=body, pipeline_job_id="once")
    assert client.get_pipeline_job(name=f"{parent}/pipelineJobs/once").display_name == "tiny"
    assert len(vertex.pipeline_jobs) == 1


def test_pipeline_parameters_are_checked_against_the_spec(vertex):
    client = pipeline_service(vertex)
    body = aiplatform_v1.PipelineJob(
        pipeline_spec=TINY,
        runtime_config={"gcs_output_directory": "gs://b/r", "parameter_values": {"nope": "x"}},
    )
    with pytest.raises(exceptions.BadRequest, match="nope is not found"):
        client.create_pipeline_job(parent="projects/p/locations/us-central1", pipeline_job=body)


def rlhf_job(vertex, reference: str = "t5-small", job_id: str = "rlhf-1"):
    uri = f"gs://{vertex.bucket}/templates/rlhf-train-template.json"
    vertex.storage.put(uri, json.dumps(rlhf_template()))
    job = aiplatform.PipelineJob(
        display_name="rlhf",
        template_path=uri,  # read through STORAGE_EMULATOR_HOST
        pipeline_root=f"gs://{vertex.bucket}/pipeline-root",
        job_id=job_id,
        parameter_values={
            "prompt_dataset": f"gs://{vertex.bucket}/prompts.jsonl",
            "preference_dataset": f"gs://{vertex.bucket}/prefs.jsonl",
            "large_model_reference": reference,
            "reward_model_train_steps": 10,
            "reinforcement_learning_train_steps": 20,
            "kl_coeff": 0.1,
            "model_display_name": "rlhf-summaries",
        },
    )
    job.submit()
    return job


def test_rlhf_template_plays_reward_model_then_reinforcement_learning(vertex):
    vertex.auto_advance = 0
    job = rlhf_job(vertex)
    sent = next(r for r in vertex.requests if r.operation == "pipelineJobs.create")
    assert sent.json["runtimeConfig"]["parameterValues"]["reward_model_train_steps"] == 10
    order = []
    for _ in range(40):
        vertex.advance(60)
        running = [t.task_name for t in job.task_details if t.state.name == "RUNNING"]
        order += [
            n for n in running if n in ("reward-model-trainer", "reinforcer") and n not in order
        ]
        if job.state.name == "PIPELINE_STATE_SUCCEEDED":
            break
    assert order == ["reward-model-trainer", "reinforcer"]
    by_name = {t.task_name: t for t in job.task_details}
    model = by_name["upload-llm-model"].execution.metadata["output:model_resource_name"]
    assert aiplatform.Model(model).display_name == "rlhf-summaries"
    assert "deploy-llm-model" not in by_name  # the template deploys only text-bison


def test_rlhf_with_a_retired_palm_model_fails_in_preprocessing(vertex):
    vertex.auto_advance = 0
    job = rlhf_job(vertex, reference="text-bison@001", job_id="rlhf-palm")
    vertex.advance(30 + 60 + 60 + 1)
    assert job.state.name == "PIPELINE_STATE_FAILED"
    assert "no longer available" in job.gca_resource.error.message
    states = {t.task_name: t.state.name for t in job.task_details}
    assert states["rlhf-preprocessor"] == "FAILED" and "reward-model-trainer" not in states


def test_model_endpoint_deploy_predict_undeploy_delete(vertex):
    model = aiplatform.Model.upload(
        display_name="llm",
        artifact_uri=f"gs://{vertex.bucket}/model",
        serving_container_image_uri="us-docker.pkg.dev/vertex-ai/prediction/serve:latest",
    )
    assert aiplatform.Model(model.resource_name).display_name == "llm"
    endpoint = aiplatform.Endpoint.create(display_name="llm-endpoint")
    endpoint.deploy(
        model,
        machine_type="a2-ultragpu-8g",
        accelerator_type="NVIDIA_A100_80GB",
        accelerator_count=8,
        min_replica_count=1,
    )
    deploy = next(r for r in vertex.requests if r.operation == "endpoints.deployModel")
    machine = deploy.json["deployedModel"]["dedicatedResources"]["machineSpec"]
    assert machine["acceleratorType"] == 9  # GAPIC sends the enum number
    stored = vertex.serving.endpoints[endpoint.resource_name]["deployedModels"][0]
    assert stored["dedicatedResources"]["machineSpec"]["acceleratorType"] == "NVIDIA_A100_80GB"
    assert vertex.count("GET", "operations.get") == 3  # upload, create, deploy: done on 1st GET

    assert endpoint.predict(instances=[{"prompt": "hello"}]).predictions == [
        {"content": "Tuned echo: hello"}
    ]
    with pytest.raises(exceptions.BadRequest, match="undeploy"):
        endpoint.delete()
    endpoint.undeploy_all()
    endpoint.delete()
    with pytest.raises(exceptions.NotFound):
        endpoint.api_client.get_endpoint(name=endpoint.resource_name)
    model.delete()
    assert vertex.serving.models == {}


def test_gapic_generate_content_on_an_endpoint(vertex):
    vertex.storage.put(f"gs://{vertex.bucket}/t.jsonl", "{}\n")
    parent = vertex.parent(vertex.project, vertex.location)
    _model, endpoint = vertex.serving.add_tuned(parent, "tuned", "gemini-2.5-flash")
    client = aiplatform_v1.PredictionServiceClient(
        credentials=vertex.credentials(),
        transport="rest",
        client_options={"api_endpoint": vertex.url},
    )
    answer = client.generate_content(
        model=endpoint, contents=[{"role": "user", "parts": [{"text": "hi"}]}]
    )
    assert answer.candidates[0].content.parts[0].text == "Tuned echo: hi"
    assert vertex.requests[-1].path == f"/v1/{endpoint}:generateContent"
