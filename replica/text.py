"""Word banks and deterministic text generators for the replica's news copy.

Everything here is a pure function of a ``random.Random`` passed in by the caller, so the corpus
is reproducible from the seed. No external data: the banks below are small, hand-written lists
that read like wire copy. People and companies are fictional; countries, cities and
international bodies are real names used as scenery. Every string is kept inside windows-1251
(plus ASCII), so any article can be served in that charset.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

MONTHS = (
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
)

# Dateline cities, as printed in the first paragraph ("CITY, Month D. /TASS/. ").
DATELINES_RU = (
    "MOSCOW",
    "MOSCOW",
    "MOSCOW",
    "MOSCOW",
    "MOSCOW",
    "MOSCOW",
    "ST. PETERSBURG",
    "ST. PETERSBURG",
    "VLADIVOSTOK",
    "KAZAN",
    "NOVOSIBIRSK",
    "YEKATERINBURG",
    "SOCHI",
    "KALININGRAD",
    "MURMANSK",
    "DONETSK",
    "SEVASTOPOL",
    "IGORA /Leningrad Region/",
    "BAIKONUR /Kazakhstan/",
    "KRASNODAR",
)
DATELINES_WORLD = (
    "WASHINGTON",
    "BEIJING",
    "NEW YORK",
    "LONDON",
    "PARIS",
    "BERLIN",
    "ANKARA",
    "TEHRAN",
    "NEW DELHI",
    "CAIRO",
    "MINSK",
    "ASTANA",
    "TOKYO",
    "BRASILIA",
    "PRETORIA",
    "UNITED NATIONS",
    "BRUSSELS",
    "GENEVA",
    "TBILISI",
    "BAKU",
)

COUNTRIES = (
    "China",
    "India",
    "Brazil",
    "South Africa",
    "Turkey",
    "Iran",
    "Egypt",
    "Belarus",
    "Kazakhstan",
    "Uzbekistan",
    "Armenia",
    "Azerbaijan",
    "Vietnam",
    "Indonesia",
    "Malaysia",
    "Saudi Arabia",
    "the United Arab Emirates",
    "Qatar",
    "Syria",
    "Serbia",
    "Hungary",
    "the United States",
    "France",
    "Germany",
    "Japan",
    "Mongolia",
    "Algeria",
    "Ethiopia",
    "Argentina",
    "Mexico",
    "Cuba",
    "Venezuela",
    "Nicaragua",
    "Ukraine",
    "Finland",
    "Norway",
)

ORGS = (
    "the United Nations",
    "the UN Security Council",
    "BRICS",
    "the Shanghai Cooperation Organization",
    "the Eurasian Economic Union",
    "the Collective Security Treaty Organization",
    "OPEC+",
    "the International Atomic Energy Agency",
    "the European Union",
    "NATO",
    "the G20",
    "the Commonwealth of Independent States",
    "the African Union",
    "ASEAN",
)

COMPANIES = (
    "Severstal-Invest",
    "Volga Energy",
    "Arktika LNG Holding",
    "Uralmash Systems",
    "Baltic Grain Terminal",
    "Sibir Aero",
    "Polar Minerals",
    "Neva Shipyards",
    "Kama Motors",
    "Vostok Rail",
    "Orion Telecom",
    "Tundra Oil & Gas",
    "Altai Pharma",
    "Sokol Aviation",
)

FIRST_NAMES = (
    "Alexander",
    "Dmitry",
    "Sergey",
    "Andrei",
    "Mikhail",
    "Nikolai",
    "Pavel",
    "Igor",
    "Oleg",
    "Yury",
    "Viktor",
    "Konstantin",
    "Maria",
    "Yelena",
    "Olga",
    "Tatyana",
    "Anna",
    "Irina",
    "Natalya",
    "Svetlana",
)
LAST_NAMES = (
    "Orlov",
    "Volkov",
    "Sokolov",
    "Lebedev",
    "Kozlov",
    "Novikov",
    "Morozov",
    "Belov",
    "Zaitsev",
    "Pavlov",
    "Semyonov",
    "Golubev",
    "Vinogradov",
    "Bogdanov",
    "Vorobyov",
    "Fyodorov",
    "Mikhailov",
    "Tarasov",
    "Belyaev",
    "Komarov",
)
FEMALE_FIRST = {"Maria", "Yelena", "Olga", "Tatyana", "Anna", "Irina", "Natalya", "Svetlana"}

ROLES = (
    "Deputy Foreign Minister",
    "Kremlin Spokesman",
    "Foreign Ministry Spokesperson",
    "Deputy Prime Minister",
    "Economic Development Minister",
    "Finance Minister",
    "State Duma Speaker",
    "Federation Council Speaker",
    "Security Council Secretary",
    "Energy Minister",
    "Governor of the Leningrad Region",
    "Head of the Emergencies Ministry",
    "Roscosmos Director General",
    "Russian Ambassador to the United Nations",
    "presidential aide",
    "First Deputy Chief of Staff",
)

PHOTO_AGENCIES = ("TASS", "TASS", "TASS", "TASS", "AP Photo", "REUTERS", "EPA", "AFP")

SECTION_TOPICS: dict[str, tuple[str, ...]] = {
    "politics": (
        "strategic stability",
        "bilateral cooperation",
        "the Ukrainian settlement",
        "regional elections",
        "nuclear arms control",
        "trade in national currencies",
        "migration policy",
        "the Arctic agenda",
        "security guarantees",
        "the visa regime",
        "consular issues",
        "parliamentary cooperation",
    ),
    "world": (
        "the Middle East settlement",
        "the humanitarian situation",
        "the snap parliamentary election",
        "the ceasefire agreement",
        "sanctions policy",
        "the refugee crisis",
        "the coalition talks",
        "the border dispute",
        "the budget deadlock",
        "the peace initiative",
        "the presidential runoff",
        "protests in the capital",
    ),
    "economy": (
        "oil exports",
        "the key rate",
        "the grain harvest",
        "LNG supplies",
        "the ruble exchange rate",
        "industrial output",
        "consumer inflation",
        "the federal budget",
        "the Northern Sea Route",
        "car production",
        "fertilizer exports",
        "mortgage lending",
    ),
    "defense": (
        "air defense systems",
        "the strategic missile forces",
        "naval exercises",
        "drone production",
        "the state defense order",
        "military-technical cooperation",
        "combat training",
        "the Northern Fleet",
        "electronic warfare",
        "the Army-2026 forum",
    ),
    "science": (
        "the lunar program",
        "the Angara rocket",
        "the Russian Orbital Station",
        "fusion research",
        "Arctic climate studies",
        "a new vaccine",
        "quantum computing",
        "the Soyuz MS mission",
        "the Spektr-UV observatory",
        "genome editing",
    ),
    "emergencies": (
        "wildfires",
        "the flood situation",
        "a gas explosion",
        "a road accident",
        "an earthquake",
        "a forest fire",
        "a storm warning",
        "a ferry accident",
        "a landslide",
        "an emergency landing",
    ),
    "society": (
        "the Hermitage exhibition",
        "the Bolshoi Theater premiere",
        "the film festival",
        "tourist flows",
        "the school year",
        "the book fair",
        "the museum night",
        "the national park",
        "the literature prize",
        "the restoration works",
    ),
    "sports": (
        "the Russian Premier League",
        "the KHL season",
        "the figure skating Grand Prix",
        "the chess championship",
        "the Olympic qualification",
        "the biathlon World Cup",
        "the tennis tournament",
        "the boxing title fight",
        "the marathon",
        "doping control",
    ),
    "pressreview": (
        "budget talks",
        "oil prices",
        "the ruble",
        "the Kremlin's agenda",
        "Europe's energy crunch",
        "the Middle East",
        "the US election campaign",
        "new sanctions",
        "the housing market",
        "the grain deal",
    ),
}

SPORT_TEAMS = (
    "Zenit",
    "Spartak",
    "CSKA",
    "Lokomotiv",
    "Dynamo",
    "SKA",
    "Ak Bars",
    "Krasnodar",
    "Rubin",
    "Avangard",
)

NEWSPAPERS = (
    "Kommersant",
    "Izvestia",
    "Vedomosti",
    "Nezavisimaya Gazeta",
    "Rossiyskaya Gazeta",
)
NEWSPAPERS_RU = {
    "Kommersant": "Коммерсантъ",
    "Izvestia": "Известия",
    "Vedomosti": "Ведомости",
    "Nezavisimaya Gazeta": "Независимая газета",
    "Rossiyskaya Gazeta": "Российская газета",
}

# Title templates per section. Slots: {country} {country2} {person} {surname} {role} {org}
# {company} {topic} {number} {team} {team2} {city}.
TITLES: dict[str, tuple[str, ...]] = {
    "politics": (
        "Russia, {country} discuss {topic}",
        "{role} {surname} says talks with {country} on {topic} to continue",
        "Kremlin comments on {topic}",
        "Russia ready to expand dialogue with {country} on {topic} - diplomat",
        "{surname}: {org} must take into account Russia's position on {topic}",
        'Moscow calls "unacceptable" {country}\'s statements on {topic}',
        "Russian, {country} delegations hold consultations on {topic} in {city}",
        "State Duma passes bill on {topic} in first reading",
        "Russia to respond to {org} decision on {topic}, says {surname}",
    ),
    "world": (
        "{country} announces new measures on {topic}",
        "{org} to hold emergency meeting on {topic}",
        "{country}, {country2} agree to resume talks on {topic}",
        "Death toll in {country} rises to {number}",
        "{country}'s leader rejects criticism over {topic}",
        "Thousands rally in {country} over {topic}",
        'Envoy says {topic} "at a crossroads" after {country} vote',
        "{country} expels diplomats amid dispute over {topic}",
    ),
    "economy": (
        "Russia's {topic} up {number}% in September",
        "{company} to invest {number} bln rubles in new plant",
        "Central Bank keeps key rate unchanged at {number}%",
        "{company} & {country} partners sign deal on {topic}",
        "Russia, {country} to boost cooperation on {topic}",
        "Government approves plan to support {topic}",
        "{company} posts {number}% rise in nine-month net profit",
        "Analysts expect {topic} to grow by {number}% in 2027",
    ),
    "defense": (
        "Russian troops repel {number} attacks, says Defense Ministry",
        "Russian air defenses down {number} drones overnight",
        "Northern Fleet warships hold drills in the Barents Sea",
        "Russia, {country} hold joint exercises on {topic}",
        "Defense Ministry reports progress in {topic}",
        "New corvette joins the Baltic Fleet",
        "{role} {surname} inspects units involved in {topic}",
    ),
    "science": (
        "Russian scientists report breakthrough in {topic}",
        "Roscosmos sets date for {topic} launch",
        "Soyuz spacecraft docks with the ISS",
        "Russian researchers present results of {topic} study",
        "Progress cargo ship to deliver {number} tonnes to the ISS",
        "Russian team develops new method for {topic}",
    ),
    "emergencies": (
        "{number} injured in {topic} in {city}",
        "Rescuers respond to {topic} in the Krasnodar Region",
        "State of emergency declared over {topic}",
        "Plane with {number} on board makes emergency landing in {city}",
        "{topic} in Siberia: area reaches {number} hectares",
        "No casualties reported after {topic} near {city}",
    ),
    "society": (
        "{city} to host {topic} in November",
        "Over {number},000 visit {topic} in first week",
        "Russian director wins award at {topic}",
        "Museum in {city} opens after restoration",
        "Tourist flow to the Far East up {number}%",
        "Kremlin Museums announce {topic}",
    ),
    "sports": (
        "{team} beat {team2} {number}-1 in Russian Premier League",
        "{team} sign new head coach ahead of {topic}",
        "Russian figure skater wins gold at {topic}",
        "{team} and {team2} draw in KHL derby",
        "Russian athletes cleared to compete at {topic}",
        "Chess: Russian grandmaster leads {topic} after round {number}",
    ),
    "pressreview": (
        "Press review: {topic} and {topic2}",
        "Press review: {country} eyes {topic} and Moscow weighs {topic2}",
        "Press review: {topic} in focus as {country} courts Moscow",
    ),
}

CLAIMS = (
    "{topic} remains a priority for both sides",
    "the parties intend to expand cooperation on {topic}",
    "{country} is ready to continue dialogue on {topic}",
    "no decision on {topic} had been made so far",
    "the situation around {topic} required close attention",
    "work on {topic} would continue in the coming months",
    "the two countries had similar approaches to {topic}",
    "Moscow expected concrete proposals on {topic} from {country}",
    "the results on {topic} exceeded earlier forecasts",
    "all the agreements on {topic} would be fulfilled",
    "the new rules on {topic} would take effect on January 1",
    "consultations on {topic} would be held in {city} next month",
)

SENTENCES = (
    "{role} {person} told reporters that {claim}.",
    "According to {surname}, {claim}.",
    "{person} noted that {claim}.",
    "Earlier, {org} said that {claim}.",
    "The official stressed that {claim}.",
    "{surname} added that {claim}.",
    "Sources familiar with the matter said that {claim}.",
    "The talks in {city} focused on {topic} and {topic2}.",
    "In 2025, trade between Russia and {country} reached ${number} billion, "
    "according to official data.",
    "Experts estimate the cost of the project at {number} bln rubles.",
    "The meeting was attended by representatives of {org} and {company}.",
    "A total of {number} specialists took part in the work.",
    "The statement was published on the ministry's website on {weekday}.",
    'The official described the situation as "difficult but manageable."',
    "The next round of consultations is scheduled for {month}.",
    "{company} said it would present a detailed plan by the end of the year.",
    "Officials in {country} have not yet commented on the report.",
    "The document was signed on the sidelines of the forum in {city}.",
    "According to the regional authorities, {number} people were evacuated as a precaution.",
    "Earlier this year, the figure stood at {number} percent.",
    'In his words, "there is no alternative to dialogue on {topic}."',
)

SECTION_ROLES: dict[str, tuple[str, ...]] = {
    "economy": (
        "Economic Development Minister",
        "Finance Minister",
        "Central Bank Deputy Governor",
        "Energy Minister",
        "Deputy Prime Minister",
        "chief economist",
    ),
    "defense": (
        "Defense Ministry spokesman",
        "Deputy Defense Minister",
        "Northern Fleet Commander",
        "military expert",
    ),
    "science": (
        "Roscosmos Director General",
        "President of the Russian Academy of Sciences",
        "Science and Higher Education Minister",
        "lead researcher",
    ),
    "emergencies": (
        "Head of the Emergencies Ministry",
        "regional governor",
        "Emergencies Ministry spokesperson",
        "local police spokesperson",
    ),
    "society": (
        "Culture Minister",
        "museum director",
        "festival director",
        "Tourism Agency head",
    ),
    "sports": (
        "Sports Minister",
        "head coach",
        "club president",
        "Russian Olympic Committee President",
    ),
}

SECTION_CLAIMS: dict[str, tuple[str, ...]] = {
    "defense": (
        "the units had completed all the assigned tasks",
        "the air defense systems had intercepted all the targets",
        "the drills on {topic} had been held as planned",
        "the new equipment would be delivered to the troops by the end of the year",
    ),
    "science": (
        "the experiment on {topic} had produced promising results",
        "the launch would take place as scheduled",
        "the team would publish its findings early next year",
        "the equipment had been tested successfully",
    ),
    "emergencies": (
        "the situation was under control",
        "there was no threat to residential areas",
        "the cause of the incident was being investigated",
        "all the injured had received medical assistance",
    ),
    "society": (
        "the event had attracted a record number of visitors",
        "tickets had sold out within hours",
        "the program would include works by young authors",
        "the restored halls would open to the public in spring",
    ),
    "sports": (
        "the team was ready for the decisive match",
        "the player had fully recovered from the injury",
        "the club intended to fight for the title",
        "the schedule of {topic} would not change",
    ),
}

SECTION_SENTENCES: dict[str, tuple[str, ...]] = {
    "economy": (
        "Shares of {company} rose {number}% on the Moscow Exchange after the announcement.",
        "The company plans to create about {number}0 new jobs in the region.",
        "In the first nine months of the year, the indicator grew by {number}%.",
        "Analysts polled by TASS expect the trend to continue into 2027.",
    ),
    "defense": (
        "The Defense Ministry said that {number} drones were intercepted overnight.",
        "The exercises involve about {number}00 servicemen and {number} warships.",
        "The crews practiced repelling a massive air attack.",
        "The ministry published footage of the combat work on its Telegram channel.",
    ),
    "science": (
        "The launch is scheduled for {month} from the Vostochny spaceport.",
        "The research was carried out jointly with colleagues from {country}.",
        "The results were published in a peer-reviewed journal.",
        "The spacecraft will spend about {number} days in orbit.",
    ),
    "emergencies": (
        "According to the regional emergencies ministry, {number} people were evacuated.",
        "More than {number}0 rescuers and {number} units of equipment are working at the site.",
        "A criminal case has been opened, the regional investigative committee said.",
        "Traffic on the section of the highway has been restricted.",
    ),
    "society": (
        "The exhibition will run until {month} and features over {number}0 works.",
        "Admission to the event is free for children and students.",
        "The festival program includes concerts, lectures and film screenings.",
        "Last year, the event was attended by about {number},000 people.",
    ),
    "sports": (
        "{team} midfielder {person} scored twice in the second half.",
        "{team} now have {number} points after {number} matches.",
        "The match was attended by {number},000 spectators.",
        "The next round of {topic} will start in {month}.",
        "{team} will host {team2} next weekend.",
    ),
}

SUBHEADS = (
    "Background",
    "What comes next",
    "Economic dimension",
    "Security concerns",
    "Reaction abroad",
    "Key figures",
    "The view from {city}",
    "Talks on {topic}",
)

QUESTIONS = (
    "How do you assess the current state of {topic}?",
    "What results do you expect from the talks with {country}?",
    "Is there a risk that the situation around {topic} will escalate?",
    "What role does {org} play in this process?",
    "When can we expect a decision on {topic}?",
    "How have sanctions affected work on {topic}?",
    "What are your plans for next year?",
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Words that an edit may swap, and what they become; also used to make "nearly the same"
# republished copies.
SYNONYMS = {
    "said": "stated",
    "noted": "pointed out",
    "added": "also said",
    "stressed": "emphasized",
    "discuss": "review",
    "continue": "go on",
    "ready": "prepared",
    "expand": "broaden",
    "new": "fresh",
    "concrete": "specific",
    "close": "careful",
    "held": "conducted",
    "next": "following",
    "rise": "increase",
    "says": "states",
}

_POLITICAL = frozenset(("politics", "world", "economy", "pressreview"))
GENERIC_SENTENCES = (
    "{role} {person} told reporters that {claim}.",
    "According to {surname}, {claim}.",
    "{person} noted that {claim}.",
    "The official stressed that {claim}.",
    "{surname} added that {claim}.",
    "Sources familiar with the matter said that {claim}.",
    "A total of {number} specialists took part in the work.",
    "The statement was published on the official website on {weekday}.",
    "Earlier this year, the figure stood at {number} percent.",
)

_SLOT = re.compile(r"\{(\w+)\}")


def person(rng: random.Random) -> str:
    """A fictional full name."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def surname_of(name: str) -> str:
    """The last word of a full name, with the feminine ending where Russian uses one."""
    first, _, last = name.partition(" ")
    if first in FEMALE_FIRST:
        return last + "a"
    return last


def full_name(name: str) -> str:
    """The printed form of a fictional name (feminine surnames take an -a)."""
    first, _, _last = name.partition(" ")
    return f"{first} {surname_of(name)}"


def cap_first(text: str) -> str:
    """Upper-case the first character only."""
    return text[:1].upper() + text[1:] if text else text


class Filler:
    """Fills template slots for one article; keeps a stable cast (person, country, topics)."""

    def __init__(self, rng: random.Random, section: str) -> None:
        self.rng = rng
        self.section = section
        topics = SECTION_TOPICS[section]
        self.topic = rng.choice(topics)
        self.topic2 = rng.choice([t for t in topics if t != self.topic])
        self.country = rng.choice(COUNTRIES)
        self.country2 = rng.choice([c for c in COUNTRIES if c != self.country])
        self.person = full_name(person(rng))
        self.role = rng.choice(SECTION_ROLES.get(section, ROLES))
        self.org = rng.choice(ORGS)
        self.company = rng.choice(COMPANIES)
        self.city = rng.choice(("Moscow", "St. Petersburg", "Kazan", "Vladivostok", "Sochi"))
        self.team = rng.choice(SPORT_TEAMS)
        self.team2 = rng.choice([t for t in SPORT_TEAMS if t != self.team])
        self.used: set[str] = set()

    def value(self, slot: str) -> str:
        rng = self.rng
        if slot == "topic":
            # Mostly the article's own topic, sometimes a neighbour, for variety.
            return self.topic if rng.random() < 0.7 else rng.choice(SECTION_TOPICS[self.section])
        if slot == "topic2":
            return self.topic2
        if slot == "country":
            return self.country
        if slot == "country2":
            return self.country2
        if slot == "person":
            return self.person
        if slot == "surname":
            return self.person.split(" ")[-1]
        if slot == "role":
            return self.role
        if slot == "role_lc":
            return self.role[:1].lower() + self.role[1:]
        if slot == "org":
            return self.org
        if slot == "company":
            return self.company
        if slot == "city":
            return self.city
        if slot == "team":
            return self.team
        if slot == "team2":
            return self.team2
        if slot == "number":
            return str(rng.choice((2, 3, 4, 5, 7, 12, 15, 18, 21, 26, 34, 48, 60, 75, 120)))
        if slot == "month":
            return rng.choice(MONTHS)
        if slot == "weekday":
            return rng.choice(WEEKDAYS)
        if slot == "claim":
            return self.fill(rng.choice(SECTION_CLAIMS.get(self.section, CLAIMS)))
        raise KeyError(slot)

    def fill(self, template: str) -> str:
        return _SLOT.sub(lambda m: self.value(m.group(1)), template)

    def sentence(self) -> str:
        """One sentence; templates already used in this article are avoided while possible."""
        own = SECTION_SENTENCES.get(self.section)
        template = ""
        for _ in range(4):
            if own is not None and self.rng.random() < 0.5:
                template = self.rng.choice(own)
            else:
                bank = SENTENCES if self.section in _POLITICAL else GENERIC_SENTENCES
                template = self.rng.choice(bank)
            if template not in self.used:
                break
        self.used.add(template)
        return cap_first(self.fill(template))

    def paragraph(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))


def title(rng: random.Random, fill: Filler, section: str, kind: str) -> str:
    """A headline; some carry editorial prefixes (FACTBOX, IN BRIEF)."""
    text = cap_first(fill.fill(rng.choice(TITLES[section])))
    if section != "pressreview" and kind in ("news", "article"):
        roll = rng.random()
        if roll < 0.015:
            text = "FACTBOX: " + text
        elif roll < 0.03:
            text = "IN BRIEF: " + text
    return text


def lead(fill: Filler) -> str:
    """A one- or two-sentence standfirst."""
    rng = fill.rng
    first = fill.sentence()
    if rng.random() < 0.4:
        return first + " " + fill.sentence()
    return first


def reword(text: str, rng: random.Random) -> str:
    """Swap one or two words for synonyms; if none fit, append a short clause."""
    words = text.split(" ")
    spots = [i for i, w in enumerate(words) if w in SYNONYMS]
    if not spots:
        return text.rstrip(".") + ", officials said."
    for i in rng.sample(spots, k=min(len(spots), rng.choice((1, 2)))):
        words[i] = SYNONYMS[words[i]]
    return " ".join(words)


def pick(rng: random.Random, items: Sequence[str]) -> str:
    """``rng.choice`` with a narrower type for mypy."""
    return items[rng.randrange(len(items))]
