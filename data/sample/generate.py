"""Generate data/sample/financial_news.csv: short financial-news-style sentences with sentiment
labels, written for pipectl's quick start and tests.

Every sentence comes from the templates and word lists below (fictional companies, people and
tickers); nothing is taken from a real dataset. The output is reproducible: a fixed seed, and
`python data/sample/generate.py` rewrites the same bytes. `--check` fails when the committed file
differs from what the generator produces.

Realistic quirks are added on purpose so the data stage has something to clean: one exact
duplicate row, one sentence that appears with two labels (neutral and negative), one sentence that
differs from another only in spacing and case, one row with an empty sentence, mojibake in a
company name, and about 8% of labels flipped to a neighbouring class, as annotators disagree.

About a third of the sentences are hard on purpose (`HARD`): contrasts ("sales rose but profit
fell"), negations, losses that shrink, and neutral sentences full of sentiment words, so the three
classes share most of their vocabulary. Without them every candidate model scored the same
(macro-F1 0.9304): the sample could not tell models apart.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
from pathlib import Path

SEED = 20240611
OUT = Path(__file__).resolve().parent / "financial_news.csv"
COUNTS = {"neutral": 215, "positive": 125, "negative": 60}  # about the real-world balance

COMPANIES = [
    "Nordvik Paper",
    "Kestrel Systems",
    "Halvard Marine",
    "Aurora Retail Group",
    "Lumio Telecom",
    "Brightwater Foods",
    "Solstra Energy",
    "Veltro Logistics",
    "Tamsin Bank",
    "Orrin Pharmaceuticals",
    "Kaskela Steel",
    "Merrow Media",
    "Pellion Software",
    "Rautio Construction",
    "Silvana Mining",
    "Faro Chemicals",
    "Ilmari Engineering",
    "Corvel Insurance",
    "Lindqvist Machinery",
    "Otava Forest",
]
TICKERS = [
    "NVKP",
    "KSTR",
    "HALV",
    "AURG",
    "LUMI",
    "BRWF",
    "SOLS",
    "VELT",
    "TMSN",
    "ORRN",
    "KASK",
    "MERW",
    "PELL",
    "RAUT",
    "SILV",
]
CITIES = [
    "Helsinki",
    "Tampere",
    "Oslo",
    "Stockholm",
    "Gdansk",
    "Tallinn",
    "Riga",
    "Hamburg",
    "Oulu",
    "Gothenburg",
    "Vilnius",
    "Turku",
]
COUNTRIES = ["Finnish", "Swedish", "Norwegian", "Latvian", "Danish", "Polish"]
PRODUCTS = [
    "packaging board",
    "network equipment",
    "ship engines",
    "consumer electronics",
    "frozen foods",
    "wind turbines",
    "freight services",
    "mobile subscriptions",
    "generic medicines",
    "steel tubes",
    "printing paper",
    "enterprise software",
    "building materials",
    "copper concentrate",
    "industrial coatings",
]
METRICS = [
    "net sales",
    "operating profit",
    "revenue",
    "order intake",
    "net profit",
    "EBITDA",
    "comparable sales",
    "pre-tax profit",
]
PERIODS = [
    "the first quarter of 2009",
    "the second quarter",
    "the third quarter of 2010",
    "January-June 2008",
    "January-September 2009",
    "the full year 2010",
    "fiscal 2009",
    "the fourth quarter",
    "the review period",
    "the first half of the year",
]
PEOPLE = [
    "Anna Lehtinen",
    "Mikael Berg",
    "Johanna Salo",
    "Erik Dahl",
    "Petra Nowak",
    "Lauri Koski",
    "Sofia Lund",
    "Tomas Varga",
    "Helena Aho",
    "Markus Holm",
]
EXCHANGES = ["Helsinki stock exchange", "Nasdaq Stockholm", "Oslo Bors", "Warsaw Stock Exchange"]
CLIENTS = [
    "a German utility",
    "the Finnish Defence Forces",
    "a Swedish retailer",
    "a US telecom operator",
    "the city of Tampere",
    "a Chinese paper mill",
    "a Norwegian shipyard",
    "a Dutch logistics group",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

TEMPLATES: dict[str, list[str]] = {
    "positive": [
        "{co}'s {metric} rose {pct}% to EUR {amt} million in {period}.",
        "{co}'s {metric} increased to EUR {amt} mn from EUR {amt2} mn a year earlier.",
        "{co} reported {metric} of EUR {amt} mn, up from EUR {amt2} mn in the corresponding period.",
        "{co} wins a EUR {amt} million order from {client}.",
        "{co} raises its full-year outlook after strong results in {period}.",
        "Shares of {co} jumped {pct}% after the company beat analysts' estimates.",
        "Demand for {co}'s {product} improved clearly in {period}, the company said.",
        "{co} signed a record contract to supply {product} to {client}.",
        "{co} expects its {metric} to grow in {year} thanks to higher prices.",
        "{co} improved its profitability and its {metric} grew by {pct}%.",
        "The board of {co} proposes a higher dividend of EUR 0.{d2} per share.",
        "${tick} breaking out to new highs, volume looks strong",
        "${tick} up {pct}% premarket after an analyst upgrade",
        "Long ${tick}, great quarter and guidance raised",
        "${tick} strong buy signal, momentum is building",
    ],
    "negative": [
        "{co}'s {metric} fell {pct}% to EUR {amt} million in {period}.",
        "{co}'s {metric} decreased to EUR {amt} mn from EUR {amt_hi} mn a year earlier.",
        "{co} swung to an operating loss of EUR {amt} mn in {period}.",
        "{co} will cut {n} jobs at its {city} plant as orders decline.",
        "{co} issued a profit warning, citing weak demand for {product}.",
        "Shares of {co} slumped {pct}% after the company lowered its guidance.",
        "{co}'s order backlog shrank sharply during {period}.",
        "{co} expects its {metric} to decline in {year} because of falling prices.",
        "${tick} down {pct}% after hours, guidance cut again",
        "${tick} breaking support, this chart looks weak",
        "Selling my ${tick}, margins keep falling",
    ],
    "neutral": [
        "{co} is a {country} company that makes {product}.",
        "The company has {n} employees in {city} and {city2}.",
        "{co} will publish its interim report for {period} on {month} {day}.",
        "{co} has appointed {person} as its new chief financial officer.",
        "The agreement was signed with {client} in {city}.",
        "{co} operates {n} sites in the Nordic and Baltic countries.",
        "The transaction is expected to be completed by the end of {year}.",
        "{co} shares are listed on the {exchange}.",
        "The value of the contract with {client} was not disclosed.",
        "{co}'s {metric} was EUR {amt} mn in {period}.",
        "{person} will take up the position on {month} {day}.",
        "{co} supplies {product} to customers in {n} countries.",
        "The new plant in {city} will produce {product}.",
        "{co} will hold its annual general meeting in {city} on {month} {day}.",
        "The company's head office is located in {city}.",
        "{co} and {co2} have agreed to form a joint venture in {city}.",
        "${tick} reports earnings on {month} {day}",
        "Watching ${tick} into the close, no position yet",
    ],
}


#: Sentences whose words point the other way: the label rests on contrast, negation or direction.
HARD: dict[str, list[str]] = {
    "positive": [
        "{co}'s {metric} fell less than expected in {period}, and its shares rose {pct}%.",
        "Despite weak demand for {product}, {co} increased its {metric} by {pct}%.",
        "{co} cut its operating loss to EUR {amt} mn from EUR {amt_hi} mn a year earlier.",
        "{co} no longer expects its {metric} to decline in {year}.",
        "Analysts had feared a loss, but {co} reported a profit of EUR {amt} mn.",
        "{co}'s costs fell {pct}% in {period}, lifting its {metric}.",
        "The decline in {co}'s order intake has ended, the company said.",
        "${tick} not as weak as people think, buying the dip",
    ],
    "negative": [
        "{co}'s {metric} rose {pct}% but its operating profit fell to EUR {amt} mn.",
        "{co} did not reach its target for {metric} in {period}.",
        "Despite higher {metric}, {co} swung to a loss in {period}.",
        "{co} no longer expects its {metric} to grow in {year}.",
        "{client} cancelled an order worth EUR {amt} million from {co}.",
        "{co}'s costs rose {pct}% in {period}, squeezing its {metric}.",
        "The growth in {co}'s order intake has ended, the company said.",
        "${tick} not as strong as people think, taking profits",
    ],
    "neutral": [
        "{co} will say on {month} {day} whether its {metric} rose or fell in {period}.",
        "{co} did not comment on the fall in its share price.",
        "{co}'s {metric} rose to EUR {amt} mn in {year}; figures for {period} are due in {month}.",
        "{co} said its outlook for {year} is unchanged.",
        "Profit and loss figures for {period} are not comparable with the previous year.",
        "{co} will discuss the decline in demand for {product} at its meeting in {city}.",
        "{person} said {co} expects neither growth nor a decline in {metric}.",
        "${tick} up or down after earnings? no idea",
    ],
}
HARD_SHARE = 0.35


def fill(template: str, rng: random.Random) -> str:
    co, co2 = rng.sample(COMPANIES, 2)
    city, city2 = rng.sample(CITIES, 2)
    amt = round(rng.uniform(0.5, 250), 1)
    return template.format(
        co=co,
        co2=co2,
        city=city,
        city2=city2,
        country=rng.choice(COUNTRIES),
        product=rng.choice(PRODUCTS),
        metric=rng.choice(METRICS),
        period=rng.choice(PERIODS),
        person=rng.choice(PEOPLE),
        exchange=rng.choice(EXCHANGES),
        client=rng.choice(CLIENTS),
        month=rng.choice(MONTHS),
        day=rng.randint(1, 28),
        year=rng.randint(2008, 2012),
        pct=rng.randint(2, 45),
        amt=amt,
        amt2=round(amt * rng.uniform(0.5, 0.95), 1),
        amt_hi=round(amt * rng.uniform(1.1, 2.0), 1),
        n=rng.choice([12, 25, 40, 60, 85, 120, 150, 230, 400, 650]),
        d2=rng.randint(10, 95),
        tick=rng.choice(TICKERS),
    )


FLIP = {"positive": "neutral", "negative": "neutral", "neutral": "positive"}


def generate() -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label, count in COUNTS.items():
        made = 0
        while made < count:
            templates = HARD if rng.random() < HARD_SHARE else TEMPLATES
            sentence = fill(rng.choice(templates[label]), rng)
            if sentence.lower() in seen:
                continue
            seen.add(sentence.lower())
            rows.append((sentence, label))
            made += 1
    rng.shuffle(rows)
    # Annotator disagreement: a few labels moved to the neighbouring class.
    for i in rng.sample(range(len(rows)), k=len(rows) // 12):
        rows[i] = (rows[i][0], FLIP[rows[i][1]])

    # Quirks the data stage must clean up (see the module docstring).
    rows.insert(37, rows[12])  # an exact duplicate row
    conflict = "Kaskela Steel will close its rolling mill in Oulu for two weeks in July."
    rows.insert(80, (conflict, "neutral"))
    rows.insert(301, (conflict, "negative"))  # the same sentence, labelled differently
    spaced = next(s for s, lbl in rows if lbl == "positive" and s.startswith("Shares of"))
    rows.insert(150, ("  " + spaced.upper().replace(" ", "  ") + " ", "positive"))
    rows.insert(222, ("", "neutral"))  # an empty sentence
    rows.insert(260, ("Kaskela TerÃ¤s Oy, the steel unit of Kaskela Steel, employs 340 people.", "neutral"))
    return rows


def render(rows: list[tuple[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Sentence", "Sentiment"])
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file is out of date")
    args = ap.parse_args()
    data = render(generate())
    if args.check:
        if not OUT.exists() or OUT.read_bytes() != data:
            print(f"{OUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_bytes(data)
    rows = data.count(b"\n") - 1
    print(f"wrote {OUT} ({rows} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
