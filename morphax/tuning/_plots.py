"""Plots of a study that behave in a notebook.

Each function returns a `matplotlib.figure.Figure` made without pyplot, so
no backend is chosen, no pyplot figure is opened and `plt.show()` elsewhere
keeps working; Jupyter shows a returned Figure inline. `ax=` draws into a
user's axes (the Figure returned is theirs); a file is written only when a
path is given.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from ._records import pareto


def _figure(**kw: Any) -> Any:
    """A Figure outside pyplot that Jupyter shows inline, pyplot imported or not."""
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kw)

    def png() -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

    setattr(fig, "_repr_png_", png)  # noqa: B010 -- IPython's display protocol (a pyplot-free inline view)
    return fig


def _axes(ax: Any, size: tuple[float, float] = (6.0, 4.0)) -> tuple[Any, Any]:
    if ax is not None:
        return ax.figure, ax
    fig = _figure(figsize=size, dpi=110)
    return fig, fig.add_subplot()


def _save(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is not None:
        fig.savefig(os.fspath(path))
    return fig


def plot_history(study: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None) -> Any:
    """Each completed trial's value and the best so far, against the trial number."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _axes(ax)
    done = study.completed
    scored = [t for t in done if isinstance(t.reward, float)]
    ax.scatter([t.id for t in scored], [t.reward for t in scored], s=10, alpha=0.5, label="trial")
    ids, best = study.best_so_far()
    ax.step(ids, best, where="post", color="C3", label="best so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    direction = study.objective.directions[0]
    ax.set_ylabel(f"{study.objective.name} ({direction[:3]})")
    ax.set_title(f"{study.name}: {len(done)} completed of {len(study.trials)} trials")
    if scored:
        ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_pareto(study: Any, path: str | os.PathLike[str] | None = None, *, ax: Any = None) -> Any:
    """The first two objectives of every completed trial, and the Pareto front
    in the study's directions."""
    fig, ax = _axes(ax)
    objective = study.objective
    done = study.completed
    pts = np.array([t.reward[:2] for t in done], dtype=float).reshape(-1, 2)
    signs = np.array([-1.0 if d == "minimize" else 1.0 for d in objective.directions[:2]])
    front = pts[pareto(pts * signs)] if len(pts) else pts
    front = front[np.argsort(front[:, 0])]
    ax.scatter(pts[:, 0], pts[:, 1], s=12, alpha=0.5, label="trials")
    ax.plot(front[:, 0], front[:, 1], "o-", color="C3", label="Pareto front")
    names = objective.labels
    ax.set_xlabel(f"{names[0]} ({objective.directions[0][:3]})")
    ax.set_ylabel(f"{names[1]} ({objective.directions[1][:3]})")
    ax.set_title(f"{study.name}: {len(done)} trials, {len(front)} on the front")
    if len(pts):
        ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _column(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    """Positions to plot a decision's values at, and tick labels for categories."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=float), None
    labels = sorted({str(v) for v in values})
    where = {label: i for i, label in enumerate(labels)}
    return np.asarray([where[str(v)] for v in values], dtype=float), labels


def plot_decisions(study: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """One panel per decision: the (first) objective of each completed trial
    against the value it chose (categories as ticks, a median line per
    category), so you see which choices matter."""
    done = [t for t in study.completed if t.reward is not None]
    per: dict[str, list[tuple[Any, float]]] = {}
    for t in done:
        y = t.reward[0] if isinstance(t.reward, tuple) else t.reward
        for key, value in t.values.items():
            shown = tuple(value) if isinstance(value, list) else value
            per.setdefault(key, []).append((shown, float(y)))
    count = max(len(per), 1)
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    fig = _figure(figsize=(3.6 * cols, 2.8 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    label = study.objective.labels[0]
    for ax, (key, pairs) in zip(axes, per.items(), strict=False):
        x, ticks = _column([v for v, _ in pairs])
        y = np.array([v for _, v in pairs])
        jitter = 0.08 * np.sin(np.arange(len(x)) * 12.9898) if ticks is not None else 0.0
        ax.scatter(x + jitter, y, s=12, alpha=0.6)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30, fontsize=8)
            medians = [np.median(y[x == i]) for i in range(len(ticks))]
            ax.plot(range(len(ticks)), medians, "_", color="C3", markersize=18, mew=2)
        ax.set_title(key, fontsize=9)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(per) :]:
        ax.set_visible(False)
    if not per:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no completed trials with known decisions", ha="center")
    fig.suptitle(f"{study.name}: {label} against each decision ({len(done)} trials)")
    return _save(fig, path)
