"""examples/notebook_tour.ipynb runs top to bottom in a real Jupyter kernel (nbclient +
ipykernel, the `dev` extra): validate -> cost -> submit -> watch -> plot -> deploy -> delete on
the in-memory FakeProvider; its loss plot is a real PNG image, and the rich HTML views
(report, estimate, job, model, deployment, job list) are what the cells show."""

from __future__ import annotations

import base64
import os
import struct
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOK = EXAMPLES / "notebook_tour.ipynb"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails for anything that is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("tour-home")
    env = {"FINETUNE_HUB_HOME": str(home), "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in (*env, "PATH")}
    os.environ.update(env)  # the kernel inherits the environment
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
        )
        client.execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb, home


def outputs(nb) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def test_every_cell_runs_without_an_error(executed):
    nb, _ = executed
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert errors == [], errors
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


def test_the_loss_plot_is_a_real_png_image(executed):
    nb, home = executed
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) == 1
    width, height = png_size(base64.b64decode(images[0]["data"]["image/png"]))
    assert width >= 300 and height >= 200
    assert png_size((home / "loss.png").read_bytes()) == (width, height)


def test_the_cells_show_rich_html(executed):
    nb, _ = executed
    html = "\n".join(
        o["data"]["text/html"] for o in outputs(nb) if "text/html" in o.get("data", {})
    )
    for expected in ("OK", "Cost estimate", "TuningJob", "TunedModel", "Deployment", "job(s)"):
        assert expected in html, expected
    assert "deleted" in html  # the last cell shows the deployment gone
    frame = [
        o
        for o in outputs(nb)
        if "text/html" in o.get("data", {}) and "train_loss" in o["data"]["text/html"]
    ]
    assert frame, "metrics_frame() shows as a table"


def test_the_tour_spends_nothing_it_does_not_state(executed):
    nb, _ = executed
    printed = "".join(o.get("text", "") for o in outputs(nb) if o.output_type == "stream")
    assert "$1.25 per hour" in printed  # the deployment's cost, stated before deploying
