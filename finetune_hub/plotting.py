"""Training metrics as a pandas table and a loss plot (matplotlib): one drawing for
`job.plot()`, notebooks and the local backend's `loss.png`.

pandas and matplotlib are the optional extra `notebook` (`pip install "finetune-hub[notebook]"`);
nothing here imports them until asked.

>>> frame = metrics_frame([MetricPoint(step=1, train_loss=2.0), MetricPoint(step=2, train_loss=1.5)])  # doctest: +SKIP
>>> fig = loss_figure(points, title="gozaru: loss")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune_hub.errors import MissingDependencyError
from finetune_hub.status import MetricPoint

INSTALL = 'pip install "finetune-hub[notebook]"'
COLUMNS = ("step", "epoch", "train_loss", "valid_loss", "train_accuracy", "valid_accuracy")


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(f"{module} is needed for this: {INSTALL}") from None


def metrics_frame(points: Sequence[MetricPoint]) -> Any:
    """A pandas DataFrame, one row per step: step, epoch, train_loss, valid_loss,
    train_accuracy, valid_accuracy, then any extra metric the provider reports (NaN where a
    step has none).

    >>> metrics_frame([MetricPoint(step=1, train_loss=2.0)]).columns[:3].tolist()  # doctest: +SKIP
    ['step', 'epoch', 'train_loss']
    """
    pd = _need("pandas")
    rows = []
    extras: list[str] = []
    for p in points:
        row = {name: getattr(p, name) for name in COLUMNS}
        for key, value in p.extra.items():
            if key not in extras:
                extras.append(key)
            row[key] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *extras])
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def loss_figure(points: Sequence[MetricPoint], *, title: str = "loss", ax: Any = None) -> Any:
    """Training and validation loss by step as a matplotlib Figure: axes labelled "step" and
    "loss", the title, a legend naming each curve. Draws into `ax` when given.

    >>> fig = loss_figure(job.metrics(), title="support-bot")  # doctest: +SKIP
    >>> fig.savefig("loss.png")  # doctest: +SKIP
    """
    _need("matplotlib")
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(6.4, 3.6), dpi=100)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    train = [(p.step, p.train_loss) for p in points if p.train_loss is not None]
    valid = [(p.step, p.valid_loss) for p in points if p.valid_loss is not None]
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", color="#1f77b4")
    if valid:
        ax.plot(*zip(*valid, strict=True), label="validation loss", color="#ff7f0e", marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if train or valid:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no loss reported yet", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    fig.tight_layout()
    return fig


def save_loss_png(points: Sequence[MetricPoint], path: str | Path, *, title: str = "loss") -> Path:
    """`loss_figure(points)` written to `path` as a PNG; returns the path.

    >>> save_loss_png(job.metrics(), "loss.png", title="gozaru")  # doctest: +SKIP
    PosixPath('loss.png')
    """
    path = Path(path)
    loss_figure(points, title=title).savefig(path, format="png")
    return path
