"""The operators' page's charts, drawn on the server as SVG by pygal (no JavaScript, nothing
fetched from elsewhere): MRR over time, and new against churned subscriptions, per currency."""

import base64

import pygal
from pygal.style import DefaultStyle

from services.billing.notifications.messages import minor_per_major
from services.billing.revenue.figures import DayFigures


def _options(title: str) -> dict[str, object]:
    return {
        "title": title,
        "style": DefaultStyle,
        "js": [],  # pygal's tooltips would load a script from a CDN: none here
        "disable_xml_declaration": True,
        "width": 900,
        "height": 360,
        "x_label_rotation": 30,
        "show_minor_x_labels": False,
        "truncate_legend": 40,
    }


def _labels(rows: list[DayFigures]) -> list[str]:
    return [row.day.isoformat() for row in rows]


def _major_step(count: int) -> int:
    return max(1, count // 12)


def mrr_chart(currency: str, totals: list[DayFigures], plans: dict[str, list[DayFigures]]) -> str:
    """MRR at the end of each day in `currency`, in all and per plan (name -> its rows)."""
    chart = pygal.Line(**_options(f"MRR ({currency.upper()})"), fill=False, dots_size=1)
    chart.x_labels = _labels(totals)
    chart.x_labels_major = chart.x_labels[:: _major_step(len(totals))]
    unit = minor_per_major(currency)  # the axis is in major units
    chart.add("all plans", [row.mrr / unit for row in totals])
    for name, rows in sorted(plans.items()):
        chart.add(name, [row.mrr / unit for row in rows])
    return _data_uri(chart.render(is_unicode=True))


def movements_chart(currency: str, totals: list[DayFigures]) -> str:
    """New and reactivated against churned subscriptions each day in `currency`."""
    chart = pygal.Bar(**_options(f"New vs churned subscriptions ({currency.upper()})"))
    chart.x_labels = _labels(totals)
    chart.x_labels_major = chart.x_labels[:: _major_step(len(totals))]
    chart.add("new", [row.new for row in totals])
    chart.add("reactivated", [row.reactivated for row in totals])
    chart.add("churned", [-row.churned for row in totals])
    return _data_uri(chart.render(is_unicode=True))


def _data_uri(svg: str) -> str:
    """The SVG as an <img> source: an image cannot run the script pygal embeds."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
