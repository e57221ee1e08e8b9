"""The transaction graph around a case's accounts as server-rendered SVG (no script, no CDN)."""

from __future__ import annotations

import math

from django.utils.html import escape
from django.utils.safestring import mark_safe

WIDTH, HEIGHT, RADIUS = 640, 420, 170


def graph_svg(graph: dict) -> str:
    txs = graph["transactions"]
    accounts = sorted(
        {tx.src_account for tx in txs} | {tx.dst_account for tx in txs} | set(graph["accounts"])
    )
    if not accounts:
        return ""
    focus = graph.get("focus")
    ring = [a for a in accounts if a != focus]
    pos = {}
    if focus in accounts:
        pos[focus] = (WIDTH / 2, HEIGHT / 2)
    for i, account in enumerate(ring):
        angle = 2 * math.pi * i / max(len(ring), 1) - math.pi / 2
        pos[account] = (WIDTH / 2 + RADIUS * 1.5 * math.cos(angle), HEIGHT / 2 + RADIUS * math.sin(angle))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        'role="img" aria-label="Transactions around the case accounts" data-testid="case-graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="18" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
    ]
    for tx in txs:
        (x1, y1), (x2, y2) = pos[tx.src_account], pos[tx.dst_account]
        alerted = tx.pk in graph["alerted"]
        colour, width = ("#c0392b", 2.5) if alerted else ("#999", 1)
        parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width}" marker-end="url(#arrow)"><title>T{tx.pk} {escape(tx.tx_ref)}: '
            f"{tx.amount_paid:,.2f} {escape(tx.currency_paid)} on {tx.ts:%Y-%m-%d}</title></line>"
        )
    for account, (x, y) in pos.items():
        fill = "#2c3e50" if account == focus else "#7f8c8d"
        parts.append(
            f'<g><circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="{fill}"/><text x="{x:.1f}" y="{y - 13:.1f}" '
            f'font-size="11" text-anchor="middle">{escape(account[:18])}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
