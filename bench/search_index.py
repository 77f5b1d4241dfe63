"""Benchmark: console search over 100,000 archived messages, p95 against 100 ms.

Run: ``.venv/bin/python -m bench.search_index [--messages 100000] [--queries 300]``

The index is made synthetically (backing up 100,000 messages here takes too long): 100
mailboxes in two domains, four folders each, three years of dates, bodies of 40-160 words
drawn from a 20,000-word vocabulary with Zipf frequencies (common words match tens of
thousands of messages, rare ones a few), written through :meth:`SearchIndex.update_folder`
as ``sync``'s catch-up writes it, and cached under ``bench/work/search/``. Then a seeded mix
of queries (common and rare words, two words, prefixes, ``from:``, ``to:``, ``subject:``,
``folder:``, ``has:attachment``, date ranges), each under five scopes (everything; a
domain-wide auditor; one's own mailbox; a domain-wide restore operator, headers only; a
domain-wide auditor limited to one year),
page 1 and page 3, through :meth:`SearchIndex.search` as the console calls it: count and
page in one read transaction. Reports p50/p95/max per query kind and overall.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path

from exoimap.store.search import Document, Reach, SearchIndex, SearchScope, parse_query

TARGET_MS = 100.0
FOLDERS = ("INBOX", "Sent Items", "Archive", "Projects")
START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
#: An auditor of *@contoso.com whose scope is limited to 2024 (a date window in the SQL).
AUDITOR_2024 = Reach(
    ("*@contoso.com",),
    dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
)
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "an", "el", "or", "us")


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Corpus:
    """The synthetic mailboxes, people and words (the same for a given seed)."""

    def __init__(self, seed: int = 17) -> None:
        self.rng = random.Random(seed)
        self.words = _vocabulary(self.rng, 20_000)
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.words))]
        self.people = [
            f"{w}.{v}" for w, v in zip(self.words[::97], self.words[5::89], strict=False)
        ][:400]
        self.mailboxes = [
            f"{self.people[n]}@{'contoso.com' if n % 2 == 0 else 'fabrikam.example'}"
            for n in range(100)
        ]

    def text(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=count))

    def document(self, folder: str, uid: int) -> Document:
        rng = self.rng
        return Document(
            folder=folder,
            uid=uid,
            date=START + dt.timedelta(seconds=rng.randrange(3 * 365 * 86400)),
            size=rng.randrange(2_000, 200_000),
            sender=f"{rng.choice(self.people).title()} <{rng.choice(self.people)}@contoso.com>",
            recipients=", ".join(f"{p}@fabrikam.example" for p in rng.sample(self.people, 2)),
            copied=f"{rng.choice(self.people)}@contoso.com" if rng.random() < 0.3 else "",
            subject=self.text(rng.randint(3, 8)),
            body=self.text(rng.randint(40, 160)),
            has_attachment=rng.random() < 0.15,
        )


def build(index: SearchIndex, corpus: Corpus, messages: int) -> float:
    started = time.perf_counter()
    per_folder = messages // (len(corpus.mailboxes) * len(FOLDERS))
    for n, mailbox in enumerate(corpus.mailboxes):
        for folder in FOLDERS:
            docs = [corpus.document(folder, uid) for uid in range(1, per_folder + 1)]
            index.update_folder(f"account{n}", mailbox, folder, add=docs)
    return time.perf_counter() - started


def queries(corpus: Corpus, count: int) -> list[tuple[str, str]]:
    rng = random.Random(42)
    words, people = corpus.words, corpus.people

    def common() -> str:
        return words[rng.randrange(5, 100)]

    def rare() -> str:
        return words[rng.randrange(2_000, 20_000)]

    def day() -> str:
        return (START + dt.timedelta(days=rng.randrange(1000))).date().isoformat()

    kinds = {
        "common word": common,
        "rare word": rare,
        "two words": lambda: f"{common()} {rare()}",
        "prefix": lambda: words[rng.randrange(100, 2_000)][:4] + "*",
        "from:": lambda: f"from:{rng.choice(people)}",
        "to: + word": lambda: f"to:{rng.choice(people)} {common()}",
        "subject:": lambda: f"subject:{common()}",
        "folder: has:attachment": lambda: f"folder:{rng.choice(FOLDERS)!r} has:attachment".replace(
            "'", '"'
        ),
        "word + dates": lambda: f"{common()} after:{day()} before:2025-12-31",
        "dates only": lambda: f"after:{day()}",
    }
    names = list(kinds)
    return [(kind, kinds[kind]()) for kind in (names[i % len(names)] for i in range(count))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dir", default="bench/work/search")
    args = parser.parse_args()
    work = Path(args.dir).absolute()
    corpus = Corpus()
    path = work / f"index-{args.messages}.sqlite"
    index = SearchIndex(path)
    done = work / f"index-{args.messages}.complete"
    if not done.exists():
        path.unlink(missing_ok=True)
        print(f"building {path} ...", flush=True)
        seconds = build(index, corpus, args.messages)
        done.write_text(f"{seconds:.1f}\n")
        print(f"indexed {args.messages} messages in {seconds:.1f} s", flush=True)
    own = corpus.mailboxes[0]
    scopes = {
        "everything": SearchScope(content=("*",)),
        "auditor *@contoso.com": SearchScope(content=("*@contoso.com",)),
        "self": SearchScope(content=(own,)),
        "operator, headers only": SearchScope(metadata=("*@contoso.com",)),
        "auditor, one year": SearchScope(content=(AUDITOR_2024,)),
    }
    timings: dict[str, list[float]] = defaultdict(list)
    hits: dict[str, list[int]] = defaultdict(list)
    for kind, text in queries(corpus, args.queries):
        query = parse_query(text)
        for scope_name, scope in scopes.items():
            for page in (1, 3):
                started = time.perf_counter()
                found = index.search(query, scope, page=page, size=50)
                elapsed = (time.perf_counter() - started) * 1000
                timings[kind].append(elapsed)
                timings[f"scope: {scope_name}"].append(elapsed)
                hits[kind].append(found.total)
    every = [t for kind, values in timings.items() if not kind.startswith("scope:") for t in values]
    print(f"{args.messages} messages indexed; {len(every)} searches (count + page of 50)")
    for kind, values in timings.items():
        p95 = statistics.quantiles(values, n=20)[18]
        matched = hits.get(kind)
        median_hits = f"  median hits {statistics.median(matched):8.0f}" if matched else ""
        print(
            f"{kind:28} p50 {statistics.median(values):6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {max(values):6.1f} ms{median_hits}"
        )
    p95 = statistics.quantiles(every, n=20)[18]
    verdict = "meets" if p95 < TARGET_MS else "MISSES"
    print(
        f"overall p50 {statistics.median(every):.1f} ms, p95 {p95:.1f} ms ({verdict} the "
        f"{TARGET_MS:.0f} ms target); load average {os.getloadavg()[0]:.2f}; "
        f"index {path.stat().st_size / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
