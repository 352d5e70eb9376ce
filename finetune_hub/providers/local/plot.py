"""A loss curve as a PNG: with matplotlib, `finetune_hub.plotting`'s drawing (labelled axes,
title, legend: the same as `job.plot()`), else a small plot drawn with zlib only."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path


def loss_curve_png(
    points: Sequence[tuple[float, float]], path: str | Path, *, title: str = "training loss"
) -> Path | None:
    """Write (step, loss) points as a line plot; returns the path, or None with no points."""
    path = Path(path)
    if not points:
        return None
    try:
        import matplotlib  # noqa: F401 - the drawing below needs it
    except ImportError:
        _plain_png(points, path)
        return path
    from finetune_hub.plotting import save_loss_png  # the same drawing as job.plot()
    from finetune_hub.status import MetricPoint

    steps = [MetricPoint(step=round(step), train_loss=loss) for step, loss in points]
    return save_loss_png(steps, path, title=title)


def _plain_png(
    points: Sequence[tuple[float, float]], path: Path, width: int = 480, height: int = 270
) -> None:
    margin = 24
    img = [[(255, 255, 255)] * width for _ in range(height)]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def px(x: float, y: float) -> tuple[int, int]:
        return (
            margin + round((x - x0) / (x1 - x0) * (width - 2 * margin)),
            height - margin - round((y - y0) / (y1 - y0) * (height - 2 * margin)),
        )

    def put(x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < width and 0 <= y < height:
            img[y][x] = color

    for x in range(margin, width - margin + 1):  # axes
        put(x, height - margin, (0, 0, 0))
    for y in range(margin, height - margin + 1):
        put(margin, y, (0, 0, 0))
    blue = (31, 119, 180)
    prev = px(*points[0])
    for point in points[1:]:
        cur = px(*point)
        steps = max(abs(cur[0] - prev[0]), abs(cur[1] - prev[1]), 1)
        for i in range(steps + 1):
            x = prev[0] + (cur[0] - prev[0]) * i / steps
            y = prev[1] + (cur[1] - prev[1]) * i / steps
            for dx, dy in ((0, 0), (1, 0), (0, 1)):
                put(round(x) + dx, round(y) + dy, blue)
        prev = cur
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in img)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    png = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)
