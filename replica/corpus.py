"""The replica's data model and its deterministic generation.

``Archive`` generates article records: index ``k`` (0 = oldest) gets an id, a publication time,
a section, a kind, a title, a lead, tags, photos, "Read also" targets, variant choices and a
list of future edits. A record is a pure function of (seed, archive size at day 0, k); the
archive only grows when the site moves forward. ``SiteState`` is the view at one day: which
articles exist, their revision, the section feeds, RSS, the sitemaps' entries and tag
listings. Bodies are generated on demand (``SiteState.body``) and cached.

Time line: the newest article at day 0 is published at start-date 19:00 Moscow time and has id
``NEWEST_ID_DAY0``; articles are spaced ``SECONDS_PER_ARTICLE`` apart (minus jitter), so each
day holds exactly ``ARTICLES_PER_DAY`` of them.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone

from replica import text
from replica.config import (
    ARTICLES_PER_DAY,
    CDN,
    DAY0_CLOCK_HOUR_MSK,
    EVENT_MARKS,
    NEWEST_ID_DAY0,
    RUSSIA_PREFIX,
    SECONDS_PER_ARTICLE,
    SECTION_WEIGHTS,
    SECTIONS,
    THEMES,
    ReplicaConfig,
)

MSK = timezone(timedelta(hours=3))
KINDS = ("news", "article", "interview", "opinion", "gallery")
RSS_ITEMS = 100
EDIT_PROBABILITY = 0.05
EDIT_WINDOW_DAYS = 3

_SECTION_NAMES = list(SECTION_WEIGHTS)
_SECTION_CUM = list(SECTION_WEIGHTS.values())
_SECOND_FEED = {
    "politics": "world",
    "world": "politics",
    "economy": "politics",
    "defense": "politics",
    "science": "society",
    "emergencies": "society",
    "society": "politics",
    "sports": "society",
}


def mix(*parts: object) -> int:
    """A stable 64-bit integer from the parts (independent of PYTHONHASHSEED)."""
    key = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def fraction(*parts: object) -> float:
    """A stable number in [0, 1) from the parts."""
    return mix(*parts) / 2.0**64


def clean(value: str) -> str:
    """NFC with single spaces: the form the ground truth uses."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def slugify(value: str) -> str:
    """Lower-case ASCII words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", value.lower().replace("'", "")).strip("-")


@dataclass(frozen=True, slots=True)
class Tag:
    """One entry of ``div.tags__list``: theme tags link to the theme page."""

    text: str
    path: str
    slug: str
    theme: bool


@dataclass(frozen=True, slots=True)
class Image:
    """A photo with its caption and credit line (``© Name/TASS``)."""

    url: str
    caption: str
    credit: str


@dataclass(frozen=True, slots=True)
class ReadAlso:
    """A "Read also" block placed after body paragraph ``after`` (0-based)."""

    after: int
    variant: int
    targets: tuple[int, ...]
    """Archive indices of the linked (older) articles."""
    utm: bool
    """Whether the links carry a ``utm_*`` tail (the target answers 301)."""


@dataclass(frozen=True, slots=True)
class Variants:
    """Per-article choices among the [GUESS] markups (see ``replica.render``)."""

    mark: int
    canonical: bool
    caption: int
    ads_inline: int
    text_blocks: int
    tag_href: int
    """0: ``/tag/<slug>``; 1: ``/tags/<slug>`` (which answers 301 to the former)."""


@dataclass(frozen=True, slots=True)
class Article:
    """One article record; what changes with edits is computed by ``SiteState``."""

    index: int
    id: int
    published: int
    """Unix seconds."""
    home: str
    """Section whose feed the article is in (``section`` of the primary path may differ)."""
    prefix: str
    """First segment of the primary path: a section, a theme slug or ``russia``."""
    kind: str
    feeds: tuple[int, ...]
    """Listing API ids (sections and themes) whose feeds hold it."""
    theme: str | None
    mark: str | None
    dateline: str | None
    tags: tuple[Tag, ...]
    title0: str
    lead: str | None
    images: tuple[Image, ...]
    api_image: str | None
    byline: tuple[str, str] | None
    """(name, position) of the interviewer or columnist."""
    duplicate_of: int | None
    """Archive index of the original when this is a republished copy."""
    orphan: bool
    """Deliberately unlinked: reachable only by knowing its URL."""
    flash: bool
    variants: Variants
    read_also: tuple[ReadAlso, ...]
    edits: tuple[tuple[int, int], ...]
    """(day, unix time) of every edit this article will ever get."""
    body_seed: int
    cyrillic: bool
    """Whether the body quotes a Cyrillic name (always for the windows-1251 article)."""

    @property
    def path(self) -> str:
        return f"/{self.prefix}/{self.id}"


Block = tuple[str, str]
"""(kind, text) of one body element: ``p``, ``h2``, ``quote`` or ``q`` (interview question)."""


def now_at(start: datetime, day: int) -> int:
    """The site's clock at ``day``: start-date + day days, at 19:00 Moscow time."""
    return int(start.timestamp()) + day * 86400


def day_start(config: ReplicaConfig) -> datetime:
    return datetime.combine(config.start_date, time(DAY0_CLOCK_HOUR_MSK), tzinfo=MSK)


class Archive:
    """Generates article records in index order, growing on demand."""

    def __init__(self, seed: int, size: int, start: datetime) -> None:
        self.seed = seed
        self.size = size
        self.start = start
        self.now0 = now_at(start, 0)
        self.articles: list[Article] = []
        self._ids: list[int] = []
        self._fwd = random.Random(mix(seed, size, "ids-forward"))
        back = random.Random(mix(seed, size, "ids-back"))
        ids = [NEWEST_ID_DAY0]
        for _ in range(size - 1):
            ids.append(ids[-1] - 2 * self._gap(back))
        self._ids = ids[::-1]
        self._russia_recent: list[int] = []
        self.special = self._pick_specials()
        self.extend(size)

    @staticmethod
    def _gap(rng: random.Random) -> int:
        roll = rng.random()
        return 1 if roll < 0.86 else 2 if roll < 0.97 else 3

    def _pick_specials(self) -> dict[str, int]:
        """Indices of the windows-1251 and the invalid-bytes articles (recent, plain news)."""
        window = min(self.size, 120)
        out: dict[str, int] = {}
        for n, name in enumerate(("cp1251", "invalid_bytes")):
            out[name] = self.size - 1 - ((mix(self.seed, self.size, name) + n * 7) % window)
        if out["cp1251"] == out["invalid_bytes"]:
            out["invalid_bytes"] = max(0, out["cp1251"] - 1)
        return out

    def id_of(self, index: int) -> int:
        while index >= len(self._ids):
            self._ids.append(self._ids[-1] + 2 * self._gap(self._fwd))
        return self._ids[index]

    def day_of(self, index: int) -> int:
        m = index - (self.size - 1)
        return -((-m) // ARTICLES_PER_DAY)

    def extend(self, count: int) -> None:
        """Generate records up to ``count`` articles."""
        while len(self.articles) < count:
            self.articles.append(self._make(len(self.articles)))

    def hostile_id(self, n: int) -> int:
        """An odd id below the oldest article: never used by a real one."""
        return self._ids[0] - 2 * (n + 1)

    # -- one record ---------------------------------------------------------------------
    def _make(self, k: int) -> Article:
        seed = self.seed
        rng = random.Random(mix(seed, self.size, k, "meta"))
        specials = self.special.values()
        special = k in specials
        home = rng.choices(_SECTION_NAMES, cum_weights=_accumulate(_SECTION_CUM))[0]
        kind = self._kind(rng, home)
        if special:
            home, kind = ("world", "news") if home == "pressreview" else (home, "news")
        orphan = not special and fraction(seed, k, "orphan") < 0.003
        day = self.day_of(k)
        m = k - (self.size - 1)
        published = self.now0 + m * SECONDS_PER_ARTICLE - rng.randrange(0, 400)
        prev = self.articles[k - 1] if k else None
        flash = rng.random() < 0.03
        if prev is not None and rng.random() < 0.03 and prev.home != "pressreview":
            published = prev.published  # several items in the same second
        if home == "pressreview":
            # Press reviews get their id when created but publish hours later.
            published = min(published + rng.randrange(3600, 4 * 3600), now_at(self.start, day))
        themes = [slug for slug, (_i, _n, homes) in THEMES.items() if home in homes]
        theme = rng.choice(themes) if themes and rng.random() < 0.3 else None
        roll = rng.random()
        if home in ("politics", "society", "economy", "emergencies") and roll < 0.06:
            prefix = RUSSIA_PREFIX
        elif theme is not None and roll < 0.2:
            prefix = theme
        else:
            prefix = home
        if special:
            prefix = home
        cast = text.Filler(random.Random(mix(seed, k, "cast")), home)
        cast.rng = rng
        title0 = self._title(rng, cast, home, kind)
        lead: str | None = clean(text.lead(cast))
        if kind == "interview" or (kind == "news" and rng.random() < 0.005):
            lead = None
        mark: str | None = None
        mroll = rng.random()
        if theme is not None and mroll < 0.6:
            mark = THEMES[theme][1]
        elif mroll < 0.08:
            mark = rng.choice(EVENT_MARKS)
        tags = self._tags(rng, cast, theme, prefix == RUSSIA_PREFIX)
        images = self._images(rng, k, kind, published)
        api_image = None
        if images and rng.random() < 0.25:
            api_image = "//" + images[0].url.split("://", 1)[1].replace("/1020_", "/434_")
        byline = None
        if kind in ("interview", "opinion"):
            byline = (
                text.full_name(text.person(rng)),
                "TASS correspondent" if kind == "interview" else rng.choice(_POSITIONS),
            )
        dateline = self._dateline(rng, home, kind)
        feeds: tuple[int, ...] = ()
        if not orphan and prefix != RUSSIA_PREFIX:
            fl = [SECTIONS[home][0]]
            if theme is not None:
                fl.append(THEMES[theme][0])
            second = _SECOND_FEED.get(home)
            if second is not None and rng.random() < 0.1:
                fl.append(SECTIONS[second][0])
            feeds = tuple(fl)
        duplicate_of = self._duplicate(k) if not special and not orphan else None
        if duplicate_of is not None:
            orig = self.articles[duplicate_of]
            home, prefix, kind, theme = orig.home, orig.home, orig.kind, orig.theme
            title0 = text.reword(orig.title0, rng) if rng.random() < 0.5 else orig.title0
            lead, mark, tags, dateline = orig.lead, orig.mark, orig.tags, orig.dateline
            images, api_image, byline = orig.images, orig.api_image, orig.byline
            feeds = (SECTIONS[home][0],)
        variants = Variants(
            mark=rng.randrange(3),
            canonical=rng.random() < 0.6,
            caption=rng.randrange(3),
            ads_inline=rng.choice((0, 0, 1, 1, 2)),
            text_blocks=rng.choice((1, 1, 2, 3)),
            tag_href=int(fraction(seed, k, "tag-href") < 0.3),
        )
        read_also = self._read_also(rng, k)
        if prefix == RUSSIA_PREFIX:
            self._russia_recent.append(k)
            del self._russia_recent[:-40]
        return Article(
            index=k,
            id=self.id_of(k),
            published=published,
            home=home,
            prefix=prefix,
            kind=kind,
            feeds=feeds,
            theme=theme,
            mark=mark,
            dateline=dateline,
            tags=tags,
            title0=clean(title0),
            lead=lead,
            images=images,
            api_image=api_image,
            byline=byline,
            duplicate_of=duplicate_of,
            orphan=orphan,
            flash=flash,
            variants=variants,
            read_also=read_also,
            edits=self._edits(k, day, published),
            body_seed=mix(seed, k, "body"),
            cyrillic=k == self.special["cp1251"] or home == "pressreview",
        )

    @staticmethod
    def _kind(rng: random.Random, home: str) -> str:
        if home == "pressreview":
            return "article"
        roll = rng.random()
        if roll < 0.80:
            return "news"
        if roll < 0.87:
            return "article"
        if roll < 0.90:
            return "interview"
        if roll < 0.93:
            return "opinion"
        return "gallery"

    @staticmethod
    def _title(rng: random.Random, cast: text.Filler, home: str, kind: str) -> str:
        if kind == "interview":
            claim = text.cap_first(cast.fill(rng.choice(text.CLAIMS)))
            return f"{cast.person.split(' ')[-1]}: {claim}"
        if kind == "opinion":
            return cast.fill(rng.choice(_OPINION_TITLES))
        if kind == "gallery":
            return cast.fill(rng.choice(_GALLERY_TITLES))
        return text.title(rng, cast, home, kind)

    @staticmethod
    def _dateline(rng: random.Random, home: str, kind: str) -> str | None:
        if home == "pressreview" or kind in ("interview", "opinion"):
            return None
        if rng.random() < 0.005:
            return None
        if home in ("world",) or rng.random() < 0.15:
            return rng.choice(text.DATELINES_WORLD)
        return rng.choice(text.DATELINES_RU)

    @staticmethod
    def _tags(
        rng: random.Random, cast: text.Filler, theme: str | None, russia: bool
    ) -> tuple[Tag, ...]:
        roll = rng.random()
        count = 0 if roll < 0.25 else 1 if roll < 0.8 else 2 if roll < 0.95 else 3
        if russia:
            count = max(count, 1)
        tags: list[Tag] = []
        if theme is not None and count and not russia:
            tags.append(Tag(THEMES[theme][1], f"/{theme}", theme, True))
        pool = [_country_tag(cast.country), _country_tag(cast.country2), _org_tag(cast.org)]
        pool.append(cast.person)
        for name in pool:
            if len(tags) >= count:
                break
            slug = slugify(name)
            if any(t.slug == slug for t in tags):
                continue
            tags.append(Tag(name, f"/tag/{slug}", slug, False))
        return tuple(tags)

    def _images(self, rng: random.Random, k: int, kind: str, published: int) -> tuple[Image, ...]:
        share = {"news": 0.7, "article": 0.9, "interview": 0.8, "opinion": 0.5}.get(kind, 1.0)
        if rng.random() >= share:
            return ()
        count = rng.randrange(4, 8) if kind == "gallery" else 1
        return tuple(
            photo(self.seed, k, j, self.id_of(k), published, rng=rng) for j in range(count)
        )

    def _duplicate(self, k: int) -> int | None:
        if fraction(self.seed, k, "dup") >= 0.01:
            return None
        j = k - 1 - mix(self.seed, k, "dup-of") % 40
        if j < 0:
            return None
        orig = self.articles[j]
        ok = orig.kind == "news" and orig.duplicate_of is None and not orig.orphan
        if not ok or orig.prefix != orig.home or orig.index in self.special.values():
            return None
        return j

    def _read_also(self, rng: random.Random, k: int) -> tuple[ReadAlso, ...]:
        roll = rng.random()
        blocks = 0 if roll < 0.4 else 1 if roll < 0.75 else 2 if roll < 0.93 else 3
        out = []
        used: set[int] = set()
        for b in range(blocks):
            targets: list[int] = []
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                if self._russia_recent and rng.random() < 0.2:
                    cand = rng.choice(self._russia_recent)
                else:
                    cand = k - 1 - rng.randrange(min(k, 600)) if k else -1
                if cand < 0 or cand in used or self.articles[cand].orphan:
                    continue
                used.add(cand)
                targets.append(cand)
            if targets:
                out.append(
                    ReadAlso(
                        1 + b * 2 + rng.randrange(2),
                        rng.randrange(3),
                        tuple(targets),
                        rng.random() < 0.15,
                    )
                )
        return tuple(out)

    def _edits(self, k: int, day: int, published: int) -> tuple[tuple[int, int], ...]:
        out = []
        for e in range(day, day + EDIT_WINDOW_DAYS):
            if fraction(self.seed, k, "edit", e) >= EDIT_PROBABILITY:
                continue
            now_e = now_at(self.start, e)
            if e == day and published > now_e - 3600:
                continue
            lo = max(published + 600, now_at(self.start, e - 1) + 60)
            t = lo + int(fraction(self.seed, k, "edit-time", e) * max(0, now_e - lo))
            out.append((e, t))
        return tuple(out)


def photo(
    seed: int, k: int, j: int, article_id: int, published: int, *, rng: random.Random
) -> Image:
    """Photo ``j`` of article ``k``: a CDN URL dated by publication, a caption and a credit."""
    key = f"{mix(seed, k, j, 'img'):016x}"[:8]
    stamp = datetime.fromtimestamp(published, MSK).strftime("%Y%m%d")
    number = article_id * 10 + j
    url = f"{CDN}/width/1020_{key}/tass/m2/en/uploads/i/{stamp}/{number}.jpg"
    agency = rng.choice(text.PHOTO_AGENCIES)
    shooter = text.full_name(text.person(rng))
    credit = f"© {shooter}/TASS" if agency == "TASS" else f"© {agency}/{shooter}"
    caption = rng.choice(_CAPTIONS).format(
        city=rng.choice(("Moscow", "St. Petersburg", "Kazan", "Sochi", "Beijing")),
        n=j + 1,
    )
    return Image(url, clean(caption), clean(credit))


def _accumulate(weights: list[int]) -> list[int]:
    total = 0
    out = []
    for w in weights:
        total += w
        out.append(total)
    return out


def _country_tag(country: str) -> str:
    return country.removeprefix("the ")


def _org_tag(org: str) -> str:
    return org.removeprefix("the ")


_POSITIONS = (
    "political analyst",
    "TASS columnist",
    "economic observer",
    "military expert",
    "TASS deputy editor-in-chief",
)
_OPINION_TITLES = (
    "Why {topic} matters for Russia and {country}",
    "{topic}: what lies ahead",
    "The limits of Western pressure on {topic}",
    "What {country} wants from {topic}",
)
_GALLERY_TITLES = (
    "In photos: {topic} in {city}",
    "Photo gallery: {topic}",
    "Best shots of the week: {topic}",
)
_CAPTIONS = (
    "A view of {city}",
    "Participants of the meeting in {city}",
    "During the event in {city}",
    "Photo {n}: a street in {city}",
    "Delegations during the talks in {city}",
    "Rescuers at work near {city}",
    "Spectators at the stadium in {city}",
)


# -- the site at one day -------------------------------------------------------------------


class SiteState:
    """The site as it stands at ``day``: visible articles, revisions, feeds and listings."""

    def __init__(self, archive: Archive, day: int) -> None:
        self.archive = archive
        self.day = day
        self.now = now_at(archive.start, day)
        count = archive.size + ARTICLES_PER_DAY * day
        archive.extend(count)
        self.articles = archive.articles[:count]
        self.by_id = {a.id: a for a in self.articles}
        self.revision = [1 + sum(1 for e, _t in a.edits if e <= day) for a in self.articles]
        self.modified = [
            max([a.published] + [t for e, t in a.edits if e <= day]) for a in self.articles
        ]
        self.titles = [self._title(a, self.revision[a.index]) for a in self.articles]
        ordered = sorted(self.articles, key=lambda a: (-a.published, -a.id))
        self.ordered = [a.index for a in ordered]
        self.feeds: dict[int, list[int]] = {}
        for a in ordered:
            for f in a.feeds:
                self.feeds.setdefault(f, []).append(a.index)
        self._feed_keys = {
            f: [-self.articles[i].published for i in idx] for f, idx in self.feeds.items()
        }
        listed = [a.index for a in ordered if a.feeds]
        self.listed = listed
        self.rss = listed[:RSS_ITEMS]
        self.linked = [a.index for a in ordered if not a.orphan]
        """Every article with a link to it, newest first: what the sitemaps list."""
        self.tag_pages: dict[str, list[int]] = {}
        self.tag_names: dict[str, str] = {}
        for a in ordered:
            if a.orphan:
                continue
            for tag in a.tags:
                if not tag.theme:
                    self.tag_pages.setdefault(tag.slug, []).append(a.index)
                    self.tag_names[tag.slug] = tag.text
        self._bodies: dict[tuple[int, int], list[Block]] = {}

    # -- edits ----------------------------------------------------------------------------
    def _title(self, a: Article, rev: int) -> str:
        title = a.title0
        for r in range(2, rev + 1):
            if fraction(self.archive.seed, a.index, "title-edit", r) < 0.25:
                title = text.reword(title, random.Random(mix(self.archive.seed, a.index, "t", r)))
        return clean(title)

    def title(self, index: int) -> str:
        return self.titles[index]

    def body(self, index: int) -> list[Block]:
        """Body blocks of the article at its current revision (cached)."""
        rev = self.revision[index]
        key = (index, rev)
        found = self._bodies.get(key)
        if found is None:
            found = body_at(self.archive, self.articles[index], rev)
            self._bodies[key] = found
        return found

    # -- listing API ----------------------------------------------------------------------
    def feed_page(
        self, feed: int, limit: int, timestamp: int | None, exclude: set[int]
    ) -> list[Article]:
        """Items of ``feed`` with date <= timestamp, newest first, minus excluded ids."""
        idx = self.feeds.get(feed, [])
        start = 0
        if timestamp is not None:
            start = bisect.bisect_left(self._feed_keys[feed], -timestamp)
        out: list[Article] = []
        for i in idx[start:]:
            if len(out) >= limit:
                break
            a = self.articles[i]
            if a.id not in exclude:
                out.append(a)
        return out

    def search(self, words: list[str], sections: set[int], offset: int, size: int) -> list[Article]:
        out: list[Article] = []
        skipped = 0
        for i in self.listed:
            a = self.articles[i]
            if sections and not sections.intersection(a.feeds):
                continue
            hay = (self.titles[i] + " " + (a.lead or "")).lower()
            if all(w in hay for w in words):
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(a)
                if len(out) >= size:
                    break
        return out


def body_at(archive: Archive, a: Article, rev: int) -> list[Block]:
    """The body of ``a`` at revision ``rev``: its first version, then each edit in turn."""
    if a.duplicate_of is not None:
        blocks = list(base_body(archive, archive.articles[a.duplicate_of]))
        rng = random.Random(a.body_seed)
        spots = [i for i, (kind, _t) in enumerate(blocks) if kind == "p" and i > 0]
        for i in rng.sample(spots, k=min(len(spots), 2)):
            blocks[i] = ("p", clean(text.reword(blocks[i][1], rng)))
    else:
        blocks = list(base_body(archive, a))
    for r in range(2, rev + 1):
        rng = random.Random(mix(archive.seed, a.index, "edit-body", r))
        cast = text.Filler(random.Random(mix(archive.seed, a.index, "cast")), a.home)
        cast.rng = rng
        paras = [i for i, (kind, _t) in enumerate(blocks) if kind == "p"]
        if rng.random() < 0.5 or len(paras) < 2:
            blocks.append(("p", clean(cast.paragraph(rng.choice((1, 2))))))
        else:
            i = rng.choice(paras[1:])
            blocks[i] = ("p", clean(text.reword(blocks[i][1], rng)))
    return blocks


def base_body(archive: Archive, a: Article) -> list[Block]:
    """The first version of the body: 500-4,500 characters of news-like copy."""
    rng = random.Random(a.body_seed)
    cast = text.Filler(random.Random(mix(archive.seed, a.index, "cast")), a.home)
    cast.rng = rng
    roll = rng.random()
    if roll < 0.15:
        target = rng.randrange(500, 700)
    elif roll < 0.85:
        target = rng.randrange(700, 1600)
    else:
        target = rng.randrange(1600, 4300)
    if a.kind in ("article", "interview", "opinion"):
        target = max(target, 1400)
    blocks: list[Block] = []
    size = 0

    def add(kind: str, value: str) -> None:
        nonlocal size
        blocks.append((kind, clean(value)))
        size += len(value)

    if a.home == "pressreview":
        while size < target:
            paper = rng.choice(text.NEWSPAPERS)
            add("h2", f"{paper}: {text.cap_first(cast.fill(rng.choice(text.CLAIMS)))}")
            russian = text.NEWSPAPERS_RU[paper]
            add(
                "p",
                f"The newspaper {paper} («{russian}») reports that {cast.fill('{claim}')}. "
                f"{cast.sentence()}",
            )
            add("p", cast.paragraph(rng.choice((1, 2, 3))))
        return _cap(blocks)
    if a.kind == "interview":
        add(
            "p",
            f"{a.byline[0] if a.byline else 'TASS'} talked to {cast.role} {cast.person} "
            f"about {cast.topic} and {cast.topic2}.",
        )
        while size < target:
            add("q", "— " + cast.fill(rng.choice(text.QUESTIONS)))
            add("p", "— " + cast.paragraph(rng.choice((2, 3, 4))))
        return _cap(blocks)
    first = cast.paragraph(rng.choice((1, 2)))
    if a.dateline is not None:
        when = datetime.fromtimestamp(a.published, MSK)
        first = f"{a.dateline}, {text.MONTHS[when.month - 1]} {when.day}. /TASS/. {first}"
    add("p", first)
    if a.cyrillic:
        paper = rng.choice(text.NEWSPAPERS)
        add(
            "p",
            f"The newspaper {paper} («{text.NEWSPAPERS_RU[paper]}») wrote that "
            f"{cast.fill('{claim}')}.",
        )
    n = 1
    while size < target:
        if a.kind in ("article", "opinion") and n % 3 == 0:
            add("h2", cast.fill(rng.choice(text.SUBHEADS)))
        elif rng.random() < 0.06 and n > 1:
            add("quote", f'"{cast.paragraph(1)}"')
        else:
            add("p", cast.paragraph(rng.choice((1, 2, 2, 3))))
        n += 1
    return _cap(blocks)


def _cap(blocks: list[Block], limit: int = 4500) -> list[Block]:
    """Drop trailing blocks past the size limit; never end on a subhead."""
    out: list[Block] = []
    size = 0
    for kind, value in blocks:
        if out and size + len(value) > limit:
            break
        out.append((kind, value))
        size += len(value)
    while len(out) > 1 and out[-1][0] in ("h2", "q"):
        out.pop()
    return out


def iso_utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def iso_msk(ts: int) -> str:
    return datetime.fromtimestamp(ts, MSK).isoformat()
