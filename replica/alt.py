"""The alternative markup (``--markup alt``): every [GUESS] part of the spec in other shapes.

The default markup (``replica.render``) is one set of guesses about tass.com, and the crawler's
selectors were first written from the same guesses. This renderer draws the same articles as
another CMS template might, from what each part *means*, so a crawler tested on both is tested
against markup its rules were not written for. The [SEEN] parts stay as the spec has them: the
root (``div.news#news``, ``.article``, ``.interview``, ``.opinion``), the headline and lead
classes, ``span > dateformat[time]``, the JSON-LD, ``<title>``/``og:*``, ``div.news-media img``
for the lead photo, ``div.text-content > div.text-block > p / h2``, the dateline, the words
"Read also", ``div.tags__list a.tags__item``, section pages' ``ng-init``, the listing API and
RSS's title/link/pubDate/description. Each article picks one variant per part, seeded
(``AltVariants``), as the default markup does:

- theme label ("mark"), between the top of the header and the headline, theme marks linking to
  the theme page, event marks plain text: (0) a bare ``a.rubric`` / ``span.rubric``;
  (1) a ``p.kicker`` paragraph holding the link or the text; (2) ``div.topic >
  a.topic__link`` / ``span.topic__name``. The header shows the date line after the headline
  or (on some articles) first, above the label.
- lead photo (``div.news-media img``), caption and credit split three ways: (0) the credit as an
  overlay ``span.photo-author`` before the ``img``, the caption in ``div.photo-caption`` after
  the media block; (1) ``picture > source[type=image/webp] + img``, then ``div.image-text``
  "caption<br>© credit"; (2) the caption only in the ``img``'s ``alt``/``title``, the credit in
  ``cite.photo-source``.
- photos inside the text (about a third of the non-gallery articles, one or two, between
  paragraphs; they follow the lead photo in the truth's ``images``): (0) ``figure.text-figure >
  img + figcaption`` "caption <small>© credit</small>"; (1) ``div.embed-photo > img`` +
  ``p.embed-photo__caption`` + ``p.embed-photo__source``; (2) ``p.text-photo > img`` then
  ``p.text-photo__sign`` "<em>caption</em> © credit".
- galleries: (0) a Swiper slider (``div.swiper > div.swiper-wrapper > div.swiper-slide``, the
  caption and credit as two ``p`` under the slide's ``img``) before the text; (1) a photo report
  list after the text (``section.photoreport > ol > li > figure > img + figcaption`` with a
  ``1/7`` counter beside it). Half of the galleries have no intro: no ``div.text-content`` at
  all, so the truth's ``body`` is empty and ``dateline`` null.
- "Read also" between paragraphs: (0) ``div.incut`` with a ``p.incut__label`` "Read also" and a
  ``ul`` of links (absolute URLs); (1) one ``p.read-more`` "Read also: <a>…</a>; <a>…</a>";
  (2) link cards ``div.news-cards > a.news-card`` each holding a ``span`` "Read also" and a
  ``span`` with the headline. Links with a ``utm_*`` tail as in the default markup.
- tags: the [SEEN] ``div.tags__list a.tags__item`` in another container: (0) after the share
  buttons in ``div.article-footer`` with a "Tags:" label; (1) before them in
  ``section.topics`` under an ``h3`` "Topics". Tag listings live at ``/tags/<slug>``
  (``/tag/<slug>`` answers 301 there), ~30% of the links use the ``/tag/`` form; theme tags link
  to ``/<theme-slug>``. Tag pages list ``li.tag-feed__item > a > h3`` with a ``time``, and page
  with ``a[rel=next]`` "Show more" (also a ``link rel=next`` in the head).
- ``og:description`` (and ``meta description``, ``twitter:description``, JSON-LD
  ``description``) is the lead; an article without a standfirst gets the opening of its first
  paragraph instead: (0) cut below 200 characters at a word with "...", dateline kept;
  (1) the dateline removed, cut below 160 characters with "…"; (2) the whole first paragraph.
  The lead element itself is left out when there is no lead.
- ``link rel=canonical`` on every page: an absolute URL on some, a root-relative path on others.
- bylines: ``div.author-card`` (interviews: "Interviewed by" + name; opinions: the columnist's
  photo ``img.author-card__photo``, which is not an article photo, name and position).
- interview questions ``p > b``; quotes ``blockquote.quote`` without an inner ``p``; ads
  ``div.adv`` (``Реклама``); share buttons ``ul.social-share``; "Most read" items carry a
  thumbnail ``img`` of the story they link to.
- section and theme pages carry no server-rendered first batch (only the Angular template; the
  articles come from the listing API), the other answer to spec §3.1's open question.
- RSS items also carry ``guid`` (the article id, ``isPermaLink="false"``) and one ``category``
  (the mark, else the section name); the description is a CDATA section.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from replica.config import CDN, SECTIONS, THEMES
from replica.corpus import (
    MSK,
    Article,
    Block,
    Image,
    ReadAlso,
    Tag,
    iso_msk,
    mix,
    photo,
    slugify,
)
from replica.render import (
    BLOCK_SHAPES,
    TAG_PAGE_SIZE,
    UTM,
    ArticleContent,
    Renderer,
    date_span,
    draw_block,
    esc,
    human_time,
    rendered_read_also,
    text_content,
)

INLINE_PHOTO_SHARE = 0.35
"""Share of non-gallery articles with photos inside the text."""
GALLERY_WITHOUT_INTRO = 0.5
TAG_HREF_ALIAS_SHARE = 0.3
"""Share of articles whose tag links use the ``/tag/<slug>`` form (which answers 301)."""
_BLOCK_SHAPES = {
    **BLOCK_SHAPES,
    "quote": '<blockquote class="quote">{}</blockquote>',
    "q": "<p><b>{}</b></p>",
}
_DATELINE_PREFIX = re.compile(r"^.*?, [A-Z][a-z]+ \d{1,2}\. /TASS/\. ")


@dataclass(frozen=True, slots=True)
class InlinePhoto:
    """A photo inside the text, placed after body element ``after`` (0-based)."""

    after: int
    image: Image


@dataclass(frozen=True, slots=True)
class AltVariants:
    """Per-article choices among the alternative shapes (see the module docstring)."""

    date_first: bool
    mark: int
    photo: int
    inline: int
    gallery: int
    gallery_intro: bool
    description: int
    tags: int
    tag_alias: bool
    relative_canonical: bool


def alt_variants(seed: int, a: Article) -> AltVariants:
    """The alternative-markup choices of ``a``: a pure function of the seed and its index."""
    rng = random.Random(mix(seed, a.index, "alt-variants"))
    return AltVariants(
        date_first=rng.random() < 0.4,
        mark=rng.randrange(3),
        photo=rng.randrange(3),
        inline=rng.randrange(3),
        gallery=rng.randrange(2),
        gallery_intro=rng.random() >= GALLERY_WITHOUT_INTRO,
        description=rng.randrange(3),
        tags=rng.randrange(2),
        tag_alias=rng.random() < TAG_HREF_ALIAS_SHARE,
        relative_canonical=rng.random() < 0.5,
    )


def inline_photos(seed: int, a: Article, blocks: int) -> tuple[InlinePhoto, ...]:
    """Photos inside the text of ``a`` when its body has ``blocks`` elements (never galleries;
    between two body elements, so never after the last one)."""
    rng = random.Random(mix(seed, a.index, "alt-inline"))
    if a.kind == "gallery" or rng.random() >= INLINE_PHOTO_SHARE:
        return ()
    count = rng.choice((1, 1, 2))
    first = len(a.images)
    images = [photo(seed, a.index, first + m, a.id, a.published, rng=rng) for m in range(count)]
    slots = list(range(1, blocks - 1))
    spots = sorted(rng.sample(slots, k=min(count, len(slots))))
    return tuple(InlinePhoto(after, image) for after, image in zip(spots, images, strict=False))


def _cut(value: str, limit: int, ellipsis: str) -> str:
    if len(value) <= limit:
        return value
    head = value[: limit - len(ellipsis)]
    head = head[: head.rfind(" ")] if " " in head else head
    return head.rstrip(" ,;:") + ellipsis


def _ad(slot: str) -> str:
    return (
        f'<div class="adv"><span class="adv__label">Реклама</span>'
        f'<div class="adv__place" id="yandex_rtb_{slot}"></div></div>'
    )


class AltRenderer(Renderer):
    """The default renderer with every [GUESS] part drawn in the alternative shapes."""

    tag_listing = "/tags/"
    tag_alias = "/tag/"
    server_batch = 0

    def variants(self, a: Article) -> AltVariants:
        return alt_variants(self.seed, a)

    # -- what the page shows ------------------------------------------------------------
    def _make_content(self, index: int) -> ArticleContent:
        a = self.state.articles[index]
        v = self.variants(a)
        blocks = self.state.body(index)
        dateline = a.dateline
        if a.kind == "gallery" and not v.gallery_intro:
            blocks, dateline = [], None
        images = a.images + tuple(p.image for p in inline_photos(self.seed, a, len(blocks)))
        return ArticleContent(blocks, images, dateline, rendered_read_also(a, len(blocks)))

    def description(self, index: int) -> str:
        a = self.state.articles[index]
        if a.lead:
            return a.lead
        first = next((value for kind, value in self.content(index).blocks if kind == "p"), "")
        variant = self.variants(a).description
        if variant == 0:
            return _cut(first, 200, "...")
        if variant == 1:
            return _cut(_DATELINE_PREFIX.sub("", first, count=1), 160, "…")
        return first

    def canonical(self, a: Article) -> str:
        href = a.path if self.variants(a).relative_canonical else self.url(a.path)
        return f'<link rel="canonical" href="{esc(href)}">'

    # -- the article root ---------------------------------------------------------------
    def _article_main(self, index: int) -> str:
        state = self.state
        a = state.articles[index]
        v = self.variants(a)
        content = self.content(index)
        kind = a.kind
        root = "news" if kind in ("news", "gallery") else kind
        title = esc(state.titles[index])
        published = date_span(a.published)
        if state.revision[index] > 1:
            modified = state.modified[index]
            published += (
                '<span class="publish-info__updated">last update '
                f'<dateformat time="{modified}">{human_time(modified)}</dateformat></span>'
            )
        date_line = f'<div class="publish-info">{published}</div>'
        top = date_line + self._label(a, v) if v.date_first else self._label(a, v)
        after_title = "" if v.date_first else date_line
        lead = f"<p>{esc(a.lead)}</p>" if a.lead else ""
        byline = self._byline(a)
        if root == "news":
            lead_html = f'<div class="news-header__lead">{lead}</div>' if lead else ""
            header = (
                f'<header class="news-header">{top}<h1 class="news-header__title">{title}</h1>'
                f"{after_title}{lead_html}</header>"
            )
        elif root == "article":
            lead_html = f'<div class="article-lead">{lead}</div>' if lead else ""
            header = (
                f'<header class="article__head">{top}<div class="article__title-wrap">'
                f'<h1 class="article__title">{title}</h1></div>{after_title}{lead_html}</header>'
            )
        elif root == "interview":
            header = (
                f'<header class="interview-header">{top}'
                '<div class="interview-header__title-wrapper">'
                f'<h1 class="interview-header__title">{title}</h1></div>{after_title}{byline}'
                "</header>"
            )
        else:
            lead_html = f'<div class="opinion-header__lead">{lead}</div>' if lead else ""
            header = (
                f'<header class="opinion-header">{top}<div class="opinion-header__title-wrapper">'
                f'<h1 class="opinion-header__title">{title}</h1></div>{after_title}{lead_html}'
                f"{byline}</header>"
            )
        before, after = "", ""
        if kind == "gallery":
            if v.gallery == 0:
                before = self._swiper(a.images)
            else:
                after = self._photo_report(a.images)
        elif a.images:
            before = self._lead_photo(a.images[0], v.photo)
        body = self._text(a, content, v)
        tags = self._tags(a, v)
        share_url = esc(self.url(a.path))
        share = (
            '<ul class="social-share">'
            f'<li><a href="https://vk.com/share.php?url={share_url}">VK</a></li>'
            f'<li><a href="https://t.me/share/url?url={share_url}">Telegram</a></li>'
            f'<li><a href="https://x.com/intent/tweet?url={share_url}">X</a></li></ul>'
        )
        footer = f"{share}{tags}" if v.tags == 0 else f"{tags}{share}"
        root_id = ' id="news"' if root == "news" else ""
        return f'<div class="{root}"{root_id}>{header}{before}{body}{after}{footer}</div>'

    def _label(self, a: Article, v: AltVariants) -> str:
        if a.mark is None:
            return ""
        label = esc(a.mark)
        href = f"/{a.theme}" if a.theme and a.mark == THEMES[a.theme][1] else None
        if v.mark == 0:
            if href is None:
                return f'<span class="rubric">{label}</span>'
            return f'<a class="rubric" href="{href}">{label}</a>'
        if v.mark == 1:
            inner = label if href is None else f'<a href="{href}">{label}</a>'
            return f'<p class="kicker">{inner}</p>'
        if href is None:
            return f'<div class="topic"><span class="topic__name">{label}</span></div>'
        return f'<div class="topic"><a class="topic__link" href="{href}">{label}</a></div>'

    @staticmethod
    def _byline(a: Article) -> str:
        if a.byline is None:
            return ""
        name, position = (esc(value) for value in a.byline)
        if a.kind == "interview":
            return (
                '<div class="author-card"><span class="author-card__role">Interviewed by</span> '
                f'<span class="author-card__name">{name}</span></div>'
            )
        avatar = f"{CDN}/avatars/{slugify(a.byline[0])}.jpg"
        return (
            f'<div class="author-card"><img class="author-card__photo" src="{esc(avatar)}" '
            f'alt="{name}"><span class="author-card__name">{name}</span>'
            f'<span class="author-card__role">{position}</span></div>'
        )

    @staticmethod
    def _lead_photo(img: Image, variant: int) -> str:
        src, caption, credit = esc(img.url), esc(img.caption), esc(img.credit)
        if variant == 0:
            return (
                f'<div class="news-media"><span class="photo-author">{credit}</span>'
                f'<img src="{src}" alt="{caption}" loading="lazy"></div>'
                f'<div class="photo-caption">{caption}</div>'
            )
        if variant == 1:
            webp = esc(img.url.removesuffix(".jpg") + ".webp")
            return (
                f'<div class="news-media"><picture><source type="image/webp" srcset="{webp}">'
                f'<img src="{src}" alt=""></picture>'
                f'<div class="image-text">{caption}<br>{credit}</div></div>'
            )
        return (
            f'<div class="news-media"><img src="{src}" alt="{caption}" title="{caption}">'
            f'<cite class="photo-source">{credit}</cite></div>'
        )

    @staticmethod
    def _inline_photo(img: Image, variant: int) -> str:
        src, caption, credit = esc(img.url), esc(img.caption), esc(img.credit)
        if variant == 0:
            return (
                f'<figure class="text-figure"><img src="{src}" alt="{caption}">'
                f"<figcaption>{caption} <small>{credit}</small></figcaption></figure>"
            )
        if variant == 1:
            return (
                f'<div class="embed-photo"><img class="embed-photo__img" src="{src}" alt="">'
                f'<p class="embed-photo__caption">{caption}</p>'
                f'<p class="embed-photo__source">{credit}</p></div>'
            )
        return (
            f'<p class="text-photo"><img src="{src}" alt=""></p>'
            f'<p class="text-photo__sign"><em>{caption}</em> {credit}</p>'
        )

    @staticmethod
    def _swiper(images: tuple[Image, ...]) -> str:
        slides = "".join(
            f'<div class="swiper-slide"><img src="{esc(img.url)}" alt="{esc(img.caption)}">'
            f'<div class="swiper-slide__text"><p>{esc(img.caption)}</p><p>{esc(img.credit)}</p>'
            "</div></div>"
            for img in images
        )
        return (
            f'<div class="swiper photo-gallery" data-count="{len(images)}">'
            f'<div class="swiper-wrapper">{slides}</div><div class="swiper-pagination"></div>'
            '<div class="swiper-button-prev"></div><div class="swiper-button-next"></div></div>'
        )

    @staticmethod
    def _photo_report(images: tuple[Image, ...]) -> str:
        total = len(images)
        items = "".join(
            f'<li class="photoreport__item"><figure><img src="{esc(img.url)}" alt="">'
            f"<figcaption>{esc(img.caption)} "
            f'<span class="photoreport__author">{esc(img.credit)}</span></figcaption></figure>'
            f'<span class="photoreport__counter">{n}/{total}</span></li>'
            for n, img in enumerate(images, start=1)
        )
        return f'<section class="photoreport"><ol class="photoreport__list">{items}</ol></section>'

    def _read_also_alt(self, a: Article, number: int, block: ReadAlso) -> str:
        variant = mix(self.seed, a.index, "alt-read-also", number) % 3
        links = []
        for i in block.targets:
            t = self.state.articles[i]
            if block.utm:
                href = t.path + UTM.format(campaign="readalso")
            else:
                href = self.url(t.path) if variant == 0 else t.path
            links.append((esc(href), esc(t.title0)))
        if variant == 0:
            items = "".join(f'<li><a href="{h}">{t}</a></li>' for h, t in links)
            return (
                '<div class="incut"><p class="incut__label">Read also</p>'
                f'<ul class="incut__list">{items}</ul></div>'
            )
        if variant == 1:
            inner = "; ".join(f'<a href="{h}">{t}</a>' for h, t in links)
            return f'<p class="read-more">Read also: {inner}</p>'
        cards = "".join(
            f'<a class="news-card" href="{h}"><span class="news-card__kicker">Read also</span>'
            f'<span class="news-card__title">{t}</span></a>'
            for h, t in links
        )
        return f'<div class="news-cards">{cards}</div>'

    def _text(self, a: Article, content: ArticleContent, v: AltVariants) -> str:
        blocks = content.blocks
        if not blocks:
            return ""
        after: dict[int, list[str]] = {}
        for number, ra in enumerate(content.related):
            after.setdefault(ra.after, []).append(self._read_also_alt(a, number, ra))
        for p in inline_photos(self.seed, a, len(blocks)):
            after.setdefault(p.after, []).append(self._inline_photo(p.image, v.inline))
        return text_content(a, blocks, after, draw=_block, ad=_ad)

    def _tags(self, a: Article, v: AltVariants) -> str:
        if not a.tags:
            return ""
        items = "".join(
            f'<a class="tags__item" href="{esc(self._tag_href(a, t))}">{esc(t.text)}</a>'
            for t in a.tags
        )
        if v.tags == 0:
            return (
                '<div class="article-footer"><span class="article-footer__label">Tags:</span>'
                f'<div class="tags__list">{items}</div></div>'
            )
        return (
            '<section class="topics"><h3 class="topics__title">Topics</h3>'
            f'<div class="tags__list">{items}</div></section>'
        )

    def _tag_href(self, a: Article, tag: Tag) -> str:
        if tag.theme:
            return tag.path
        prefix = self.tag_alias if self.variants(a).tag_alias else self.tag_listing
        return prefix + tag.slug

    # -- other pages --------------------------------------------------------------------
    def _most_read_item(self, a: Article) -> str:
        thumb = a.images[0].url.replace("/1020_", "/434_") if a.images else ""
        img = f'<img class="most-read__thumb" src="{esc(thumb)}" alt="">' if thumb else ""
        return (
            f'<li class="most-read__item"><a class="most-read__link" href="{a.path}">{img}'
            f"<span>{esc(self.state.titles[a.index])}</span></a></li>"
        )

    def _tag(self, slug: str, page: int, items: list[int], pages: int) -> bytes:
        state = self.state
        name = state.tag_names[slug]
        base = self.tag_listing + slug
        chunk = items[(page - 1) * TAG_PAGE_SIZE : page * TAG_PAGE_SIZE]
        rows = "".join(
            f'<li class="tag-feed__item"><a href="{esc(state.articles[i].path)}">'
            f"<h3>{esc(state.titles[i])}</h3></a>"
            f'<time datetime="{iso_msk(state.articles[i].published)}">'
            f"{human_time(state.articles[i].published)}</time></li>"
            for i in chunk
        )
        more, head = "", ""
        if page > 1:
            prev = base if page == 2 else f"{base}?page={page - 1}"
            more += f'<a class="tag-feed__back" rel="prev" href="{prev}">Back</a>'
        if page < pages:
            nxt = f"{base}?page={page + 1}"
            more += f'<a class="tag-feed__more" rel="next" href="{nxt}">Show more</a>'
            head = f'<link rel="next" href="{nxt}">'
        body = (
            f'<div class="tag-feed"><h1 class="tag-feed__title">{esc(name)}</h1>'
            f'<ul class="tag-feed__list">{rows}</ul>{more}</div>'
        )
        return self._document(name, body, head)

    def _rss_item(self, a: Article) -> str:
        pub = format_datetime(datetime.fromtimestamp(a.published, MSK))
        lead = a.lead or ""
        description = f"<![CDATA[{lead}]]>" if "]]>" not in lead else esc(lead)
        category = a.mark or SECTIONS[a.home][1]
        return (
            f"<item><title>{esc(self.state.titles[a.index])}</title>"
            f"<link>{esc(self.url(a.path))}</link>"
            f'<guid isPermaLink="false">{a.id}</guid><pubDate>{pub}</pubDate>'
            f"<description>{description}</description>"
            f"<category>{esc(category)}</category></item>"
        )


def _block(block: Block) -> str:
    return draw_block(block, _BLOCK_SHAPES)
