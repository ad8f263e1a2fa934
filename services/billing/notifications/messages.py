"""What a notification says, in the user's language: rendered from the template files in
`templates/<locale>/<kind>.txt` (first line: the subject) and `<kind>.html` (autoescaped).

English is the default; a customer's Stripe `preferred_locales` picks another where a folder has
it (`pt-BR`, or `pt` for it). Amounts are integer minor units plus the currency."""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_LOCALE = "en"
LOCALES = tuple(sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir()))
# ISO 4217 currencies without minor units that Stripe supports.
_ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
_ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class Message:
    locale: str
    subject: str
    text: str
    html: str
    push_body: str  # the text's first paragraph after the greeting


def locale_for(preferred: list[str]) -> str:
    """The first of the customer's locales there are templates for (by exact tag, then by
    language), else English."""
    for wanted in preferred:
        for locale in LOCALES:
            if locale.lower() == wanted.lower():
                return locale
        language = wanted.split("-", 1)[0].lower()
        for locale in LOCALES:
            if locale.split("-", 1)[0].lower() == language:
                return locale
    return DEFAULT_LOCALE


def minor_per_major(currency: str) -> int:
    """Minor units in one unit of `currency` (1 for zero-decimal currencies, else 100)."""
    return 1 if currency.lower() in _ZERO_DECIMAL else 100


def format_amount(amount: int, currency: str, locale: str) -> str:
    """`12.34 USD` (en) or `12,34 BRL` (pt-BR), from minor units."""
    code = currency.lower()
    if code in _ZERO_DECIMAL:
        figure = f"{amount:,}"
    else:
        figure = (
            f"{amount // 100:,}.{amount % 100:02d}" if amount >= 0 else f"-{-amount / 100:,.2f}"
        )
    if locale != DEFAULT_LOCALE:
        figure = figure.replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{figure} {code.upper()}"


def _date(unix: int | None, locale: str) -> str:
    if unix is None:
        return ""
    day = datetime.fromtimestamp(unix, UTC).date()
    return day.strftime("%d/%m/%Y") if locale != DEFAULT_LOCALE else day.isoformat()


def render(*, kind: str, data: dict[str, Any], name: str, preferred: list[str]) -> Message:
    """The subject, plain text, HTML and push text of a notification of `kind`."""
    locale = locale_for(preferred)
    context = {
        "locale": locale,
        "name": name,
        "url": data.get("url"),
        "number": data.get("number"),
        "amount": (
            format_amount(data["amount"], data["currency"], locale) if "amount" in data else ""
        ),
        "trial_end": _date(data.get("trial_end"), locale),
    }
    text = _ENVIRONMENT.get_template(f"{locale}/{kind}.txt").render(context)
    subject, _, body = text.partition("\n\n")
    html = _ENVIRONMENT.get_template(f"{locale}/{kind}.html").render(context, subject=subject)
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    return Message(
        locale=locale,
        subject=subject.strip(),
        text=body,
        html=html,
        push_body=paragraphs[1] if len(paragraphs) > 1 else subject.strip(),
    )
