"""Charts as inline SVG strings: no JavaScript library, no CDN, text stays text (Chinese via fonts).

Each function takes plain numbers and labels and returns a complete `<svg>` element sized by its
viewBox, so it scales with the page and prints.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

BAR = "#3b6fb6"
LINE = "#d9822b"
GRID = "#d8dde6"
TEXT = "#333"
MUTED = "#8a94a6"
FONT = "font-family=\"'Noto Sans CJK SC','WenQuanYi Zen Hei','Microsoft YaHei',sans-serif\""


@dataclass(frozen=True)
class AgentScores:
    label: str
    scores: tuple[float, ...]
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    ranked: bool


def _svg(width: int, height: int, body: list[str], title: str, css_class: str) -> str:
    return (
        f'<svg class="chart {css_class}" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="12">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "middle", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{TEXT}"{extra}>{escape(text)}</text>'


def _nice_max(value: float) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if value <= step * 5:
            return step * 5
    return int(value) + 1


def histogram(labels: Sequence[str], counts: Sequence[int], title: str) -> str:
    """Vertical bars with the count above each bar."""
    width, height, left, bottom, top = 640, 260, 44, 40, 20
    plot_w, plot_h = width - left - 10, height - top - bottom
    ymax = _nice_max(max(counts, default=0) or 1)
    body: list[str] = []
    for i in range(6):
        value = ymax * i / 5
        y = top + plot_h - plot_h * i / 5
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{value:g}", "end", fill=MUTED))
    slot = plot_w / max(len(counts), 1)
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        h = plot_h * count / ymax
        x = left + i * slot + slot * 0.12
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.76:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{escape(label)}：{count}</title></rect>'
        )
        if count:
            body.append(_text(x + slot * 0.38, top + plot_h - h - 4, str(count)))
        body.append(_text(x + slot * 0.38, height - bottom + 16, label, fill=MUTED))
    body.append(_text(left + plot_w / 2, height - 6, "通话得分", fill=MUTED))
    return _svg(width, height, body, title, "histogram")


def pareto(labels: Sequence[str], counts: Sequence[int], title: str) -> str:
    """Failures per rule, most frequent first, with the cumulative share as a line (right axis)."""
    width, height, left, right, bottom, top = 720, 330, 44, 44, 110, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    total = sum(counts) or 1
    ymax = _nice_max(max(counts, default=0) or 1)
    body: list[str] = []
    for i in range(6):
        y = top + plot_h - plot_h * i / 5
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y + 4, f"{ymax * i / 5:g}", "end", fill=MUTED))
        body.append(_text(width - right + 6, y + 4, f"{20 * i}%", "start", fill=LINE))
    y80 = top + plot_h * 0.2
    body.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y80:.1f}" y2="{y80:.1f}" stroke="{LINE}" '
        f'stroke-dasharray="4 4" opacity="0.6"/>'
    )
    slot = plot_w / max(len(counts), 1)
    points: list[str] = []
    cumulative = 0
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        h = plot_h * count / ymax
        x = left + i * slot + slot * 0.15
        cumulative += count
        share = cumulative / total
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{escape(label)}：{count} 次，累计 {share:.0%}</title></rect>'
        )
        body.append(_text(x + slot * 0.35, top + plot_h - h - 4, str(count)))
        cx, cy = left + (i + 0.5) * slot, top + plot_h - plot_h * share
        points.append(f"{cx:.1f},{cy:.1f}")
        tx, ty = cx, top + plot_h + 12
        short = label if len(label) <= 10 else label[:9] + "…"
        body.append(
            f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="end" fill="{TEXT}" '
            f'transform="rotate(-40 {tx:.1f} {ty:.1f})">{escape(short)}</text>'
        )
    if points:
        body.append(
            f'<polyline class="cumulative" points="{" ".join(points)}" fill="none" stroke="{LINE}" stroke-width="2"/>'
        )
        body.extend(
            f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" fill="{LINE}"/>' for p in points
        )
    return _svg(width, height, body, title, "pareto")


def agent_scores(agents: Sequence[AgentScores], title: str, scale_min: float = 0.0) -> str:
    """One row per agent: each call's score as a faint dot, the mean as a diamond, the confidence
    interval as a bar. Overlapping bars mean the two ranks are not really different."""
    row_h, left, right, top, bottom = 26, 150, 20, 24, 34
    width = 720
    height = top + bottom + row_h * max(len(agents), 1)
    plot_w = width - left - right

    def x_of(score: float) -> float:
        return left + plot_w * (score - scale_min) / (100 - scale_min)

    body: list[str] = []
    for tick in range(int(scale_min), 101, 10):
        x = x_of(tick)
        body.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 6}" y2="{height - bottom}" stroke="{GRID}"/>'
        )
        body.append(_text(x, height - bottom + 16, str(tick), fill=MUTED))
    body.append(
        _text(
            left + plot_w / 2,
            height - 4,
            "通话得分（圆点：每通电话；菱形：均分；横条：置信区间）",
            fill=MUTED,
        )
    )
    for i, agent in enumerate(agents):
        y = top + row_h * i + row_h / 2
        colour = BAR if agent.ranked else MUTED
        body.append(_text(left - 8, y + 4, agent.label, "end"))
        # Calls with the same score (to 0.5 point) share one dot, larger the more calls it stands for.
        same = Counter(round(score * 2) / 2 for score in agent.scores)
        for j, (score, count) in enumerate(sorted(same.items())):
            jitter = ((j * 7) % 9 - 4) * 1.3
            body.append(
                f'<circle cx="{x_of(max(score, scale_min)):.1f}" cy="{y + jitter:.1f}" '
                f'r="{min(2.2 + 0.8 * math.sqrt(count - 1), 9):.1f}" fill="{colour}" opacity="0.28">'
                f"<title>{score:g} 分：{count} 通</title></circle>"
            )
        if agent.ci_low is not None and agent.ci_high is not None:
            lo, hi = x_of(max(agent.ci_low, scale_min)), x_of(min(agent.ci_high, 100))
            body.append(
                f'<rect class="ci" x="{lo:.1f}" y="{y - 4:.1f}" width="{max(hi - lo, 1.5):.1f}" height="8" '
                f'fill="{colour}" opacity="0.55"><title>{escape(agent.label)}：置信区间 '
                f"{agent.ci_low:.1f}–{agent.ci_high:.1f}</title></rect>"
            )
        if agent.mean is not None:
            mx = x_of(max(agent.mean, scale_min))
            body.append(
                f'<path d="M{mx:.1f},{y - 7:.1f} L{mx + 6:.1f},{y:.1f} L{mx:.1f},{y + 7:.1f} '
                f'L{mx - 6:.1f},{y:.1f} Z" fill="{LINE}"><title>{escape(agent.label)}：均分 {agent.mean:.2f}'
                "</title></path>"
            )
    return _svg(width, height, body, title, "agent-scores")
