"""The rewritten successor: the new site says the same things in other words.

A real successor site rewrites its predecessor: pages are merged, split,
retitled and moved, and the text is redrafted in the new site's voice, so
hardly a five-word run of the old text survives. What does survive is what
a page is *about*: its topic, the names of its programmes and their
acronyms, the people who lead them, the places and towns it serves.

This module invents those names for the legacy pages (the replica's default
prose has a topic, towns and places but no names), writes the sentences that
carry them on the legacy site, and redrafts pages for the new site from the
same facts in a different phrase bank. Every redraft is checked against the
text of the pages it replaces and re-drawn until no five-word run is shared.
Nothing here is copied from a real site: the names are built from word lists
written for the project.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# The pieces of programme names: "Community Access Hubs" (CAHs). Plural last
# words give plural acronyms, as real ones do ("SDFs", "PCNs").
_NAME_A = (
    "Community", "Neighbourhood", "Integrated", "Primary", "Locality", "Healthy", "Early",
    "Active", "Connected", "Shared", "Rapid", "Home", "Wellbeing", "Recovery", "Enhanced",
    "Population", "Digital", "Partnership", "Outreach", "Borough", "Citizen", "Family",
    "Resilient", "Proactive", "Joint", "Unified", "Local", "Strategic", "Person-Centred",
    "Preventive", "Bridging", "Responsive", "Anchor", "Frontline", "Stepped", "Coordinated",
)  # fmt: skip
_NAME_B = (
    "Access", "Response", "Navigation", "Prevention", "Treatment", "Assessment", "Referral",
    "Discharge", "Triage", "Outcomes", "Liaison", "Enablement", "Review", "Advice", "Therapy",
    "Screening", "Coaching", "Monitoring", "Rehabilitation", "Planning", "Resource", "Wellness",
    "Intervention", "Transition", "Capacity", "Inclusion", "Engagement", "Delivery", "Provider",
    "Navigator", "Support", "Recovery", "Pathway", "Contact", "Learning", "Hospital",
)  # fmt: skip
_NAME_C = (
    "Hubs", "Teams", "Network", "Programme", "Alliance", "Collaborative", "Scheme", "Model",
    "Pilot", "Footprints", "Clusters", "Partnership", "Service", "Units", "Panels", "Forum",
    "Initiative", "Framework", "Offer", "Centres", "Pathway", "Cells", "Circles", "Zones",
)  # fmt: skip
_FIRST = (
    "Amara", "Bilal", "Catrin", "Deepa", "Eamon", "Fiona", "Gareth", "Hana", "Imran", "Jolene",
    "Kwame", "Leona", "Mihai", "Nadia", "Owain", "Priya", "Quentin", "Rosalind", "Samir",
    "Tamsin", "Ugo", "Verity", "Wendell", "Yasmin", "Zofia", "Alistair", "Bronwen", "Cormac",
    "Delphine", "Erik", "Farah", "Gideon", "Hollie", "Ishaan", "Juno", "Kiera", "Lorcan",
    "Marisol", "Niamh", "Orla",
)  # fmt: skip
_LAST = (
    "Okafor", "Haworth", "Pennington", "Lindqvist", "Achterberg", "Molyneux", "Szymanski",
    "Battersby", "Ravindran", "Ogunleye", "Fairclough", "Kowalczyk", "Entwistle", "Nakamura",
    "Hindmarsh", "Abernethy", "Castellano", "Duckworth", "Eze", "Farnworth", "Gallacher",
    "Hargreaves", "Iqbal", "Jankowski", "Kilbride", "Lomax", "McAllister", "Naylor", "Oyelaran",
    "Prendergast", "Quayle", "Rimmer", "Sutcliffe", "Tattersall", "Umerah", "Vasquez",
    "Whittle", "Xiang", "Yeadon", "Zielinski", "Ashcroft", "Brierley", "Catterall", "Dewhurst",
    "Eckersley", "Fazakerley", "Gorton", "Heskey", "Ince-Ward", "Jolliffe",
)  # fmt: skip
_TITLES = ("Dr", "Dr", "Dr", "", "", "Professor")
_ROLES = (
    "clinical lead", "programme manager", "GP lead", "commissioning manager", "nurse consultant",
    "service lead", "medical director", "engagement lead", "pharmacy adviser", "quality lead",
)  # fmt: skip

# The legacy site's voice: sentences that carry a page's names, added to its
# text in the rewritten flavour only.
_OLD_FACTS = (
    "{Programme} ({acr}) is part of our wider plan for {topic} across {town}.",
    "The {acr} was set up after a review led by {lead}, {role}.",
    "{lead}, the CCG's {role} for {topic}, chairs the {acr} steering group.",
    "Clinics under the {acr} scheme take place at {place}.",
    "Referrals into {programme} are accepted from every practice in {town}.",
    "The {programme} brings {topic} and social care staff together at {place}.",
)
_OLD_SHARED = (
    "This work is one strand of the {shared} ({shared_acr}).",
    "Progress is reported to the {shared_acr} board every quarter.",
)

# The new site's voice: plain, second person, none of the old phrase bank.
_NEW_FACTS = (
    "{acr} stands for {programme}.",
    "{Programme} ({acr}) helps people in {town} who need {topic}.",
    "Through {acr}, you can get {topic} without a long wait.",
    "{lead} ({role}) explains what {acr} means for you.",
    "The {acr} team can see you sooner if you live in {town}.",
    "{lead} looks after this work as {role}.",
    "Sessions run every week at {place_bare}.",
    "You will find the {acr} team at {place_bare}.",
    "Ask about {programme} at your next appointment.",
    "{Topic} is now easier to reach in {town}.",
    "Our {topic} offer has changed; here is what to expect.",
    "Read on to see how {topic} works now.",
    "Questions about {acr}? {lead} and colleagues are happy to help.",
    "Since {acr} started, {topic} has moved closer to where you live.",
    "Drop in at {place_bare} to talk about {topic}.",
)
_NEW_SHARED = (
    "{shared_acr} links this work with similar projects nearby.",
    "It sits within {shared} ({shared_acr}).",
)
_NEW_FILLER = (
    "You do not have to register to use it.",
    "Speak to us if anything here is unclear.",
    "We wrote this page with local residents.",
    "Tell us what works and what does not.",
    "Bring a friend or relative if that helps.",
    "Most people are seen within a fortnight.",
    "Every site has step-free access.",
    "Leaflets in other languages are available on request.",
    "Nothing changes about how you see your own doctor.",
    "It costs you nothing.",
    "Tell the receptionist if you need a quiet room.",
    "We check this page every few months.",
    "Parking is free for patients.",
    "Interpreters can be booked in advance.",
)
_NEW_HEADINGS = (
    "What is {acr}?",
    "Who it is for",
    "Where to go",
    "Who to talk to",
    "What changes for you",
    "Getting started",
    "{Topic} at a glance",
    "How {acr} works",
)
_NEW_TITLES = (
    "{acr}: {topic} support",
    "Help with {topic}",
    "{Topic} near you",
    "About {programme}",
    "{Topic} in {town}",
    "{Topic}: your options",
    "{Programme}",
    "Who to contact about {topic}",
    "{Topic} made simpler",
)
_SPLIT_TITLES = (
    "{acr}: where to go",
    "{Programme}: who can use it",
    "{Topic} clinics at {place_bare}",
    "Meet the {acr} team",
)
_REPORT_TITLES = (
    "What we heard about {topic}",
    "{Topic}: engagement findings",
    "{acr} engagement: a summary",
)
_MERGED_TITLES = (
    "{Topic} and other local support",
    "Support for {topic} and more",
    "{Topic} services",
)

_WORD = re.compile(r"\w+")
SHINGLE = 5  # a "run" of words, as the matcher's containment step counts them


def shingles(text: str) -> set[tuple[str, ...]]:
    toks = _WORD.findall(text.lower())
    return set(zip(*(toks[i:] for i in range(SHINGLE)), strict=False))


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass(frozen=True)
class Facts:
    """What one legacy page is about, beyond its topic."""

    programme: str
    acronym: str
    lead: str
    role: str
    place: str
    town: str
    shared: tuple[str, str] | None = None  # a programme several pages of a category share


class Rewriter:
    """Names for the legacy pages and new-site drafts made from them, from one seeded RNG."""

    def __init__(self, rng: random.Random, towns: tuple[str, ...], places: tuple[str, ...]) -> None:
        self.rng = rng
        self.towns = towns
        self.places = places
        self.used: set[str] = set()

    def programme(self) -> tuple[str, str]:
        """A programme name and its acronym, neither used before on this site while others are left.

        An organisation does not give two programmes one acronym; on a very
        large replica the names run out and some acronyms repeat.
        """
        r = self.rng
        for tries in range(200):
            words = [r.choice(_NAME_A), r.choice(_NAME_B), r.choice(_NAME_C)]
            if len({w.lower() for w in words}) < 3:
                continue
            name = " ".join(words)
            acr = "".join(w[0] for w in name.replace("-", " ").split()).upper()
            if words[-1].endswith("s") and not words[-1].endswith("ss"):
                acr += "s"
            if name not in self.used and (acr.rstrip("s") not in self.used or tries >= 100):
                break
        self.used.update((name, acr.rstrip("s")))
        return name, acr

    def person(self) -> str:
        r = self.rng
        title = r.choice(_TITLES)
        name = f"{r.choice(_FIRST)} {r.choice(_LAST)}"
        return f"{title} {name}" if title else name

    def facts(self, shared: tuple[str, str] | None = None) -> Facts:
        name, acr = self.programme()
        return Facts(
            programme=name,
            acronym=acr,
            lead=self.person(),
            role=self.rng.choice(_ROLES),
            place=self.rng.choice(self.places),
            town=self.rng.choice(self.towns),
            shared=shared,
        )

    def _values(self, topic: str, f: Facts) -> dict[str, str]:
        shared, shared_acr = f.shared or ("", "")
        return {
            "topic": topic,
            "Topic": cap(topic),
            "programme": f.programme,
            "Programme": cap(f.programme),
            "acr": f.acronym,
            "lead": f.lead,
            "role": f.role,
            "place": f.place,
            # The new site writes place names bare, as a list of sites would.
            "place_bare": f.place.removeprefix("the "),
            "town": f.town,
            "shared": shared,
            "shared_acr": shared_acr,
        }

    def old_sentences(self, topic: str, f: Facts) -> list[str]:
        """Two to four sentences in the legacy voice that name the page's programme and people."""
        v = self._values(topic, f)
        # The first names the programme in full, as a page introducing an acronym does.
        naming = [t for t in _OLD_FACTS if "rogramme}" in t]
        first = self.rng.choice(naming)
        picked = [
            first,
            *self.rng.sample([t for t in _OLD_FACTS if t != first], self.rng.randint(1, 3)),
        ]
        out = [s.format(**v) for s in picked]
        if f.shared:
            out.append(self.rng.choice(_OLD_SHARED).format(**v))
        return out

    # -------------------------------------------------------------- new site

    def title(self, topic: str, f: Facts, kind: str = "page") -> str:
        bank = {"split": _SPLIT_TITLES, "merged": _MERGED_TITLES, "report": _REPORT_TITLES}.get(
            kind, _NEW_TITLES
        )
        return self.rng.choice(bank).format(**self._values(topic, f))

    def draft(
        self,
        topic: str,
        f: Facts,
        avoid: set[tuple[str, ...]],
        *,
        paragraphs: int,
        keep: float = 1.0,
        heading: bool = True,
    ) -> list[tuple[str, str]]:
        """Blocks ``(type, text)`` about ``topic`` in the new voice, sharing no run with ``avoid``.

        ``keep`` is the chance that each of the page's names (programme,
        acronym, lead, place, town) survives the redraft; the topic always does.
        """
        r = self.rng
        v = self._values(topic, f)
        kept = {name: r.random() < keep for name in ("programme", "acr", "lead", "place", "town")}
        if not (kept["programme"] or kept["acr"]) and r.random() < 0.5:
            kept["acr"] = True

        def allowed(template: str) -> bool:
            names = set(re.findall(r"\{(\w+)\}", template))
            names = {"programme" if n == "Programme" else n for n in names}
            names = {"place" if n == "place_bare" else n for n in names}
            if names & {"shared", "shared_acr"}:
                return bool(f.shared)
            return all(kept.get(n, True) for n in names - {"topic", "Topic", "role"})

        facts = [t for t in _NEW_FACTS if allowed(t)]
        blocks: list[tuple[str, str]] = []
        said: set[str] = set()

        def fresh(candidates: tuple[str, ...] | list[str]) -> str | None:
            # Re-draw until the sentence shares no five-word run with the old
            # pages, nor repeats one already on this page.
            for _ in range(40):
                s = r.choice(candidates).format(**v)
                if s not in said and not shingles(s) & avoid:
                    said.add(s)
                    return s
            return None

        # The draft opens by naming the programme, as a page about one does,
        # unless the rewrite dropped both its name and its acronym.
        naming = [t for t in facts if "{acr}" in t or "rogramme}" in t]
        for i in range(paragraphs):
            if heading and i and r.random() < 0.6:
                h = fresh([t for t in _NEW_HEADINGS if allowed(t)])
                if h:
                    blocks.append(("h2", h))
            sentences: list[str] = []
            for j in range(r.randint(2, 4)):
                pool = facts if (j == 0 or r.random() < 0.45) and facts else list(_NEW_FILLER)
                if i == 0 and j == 0 and naming:
                    pool = naming
                if f.shared and r.random() < 0.15:
                    pool = list(_NEW_SHARED)
                s = fresh(pool)
                if s:
                    sentences.append(s)
            if sentences:
                blocks.append(("p", " ".join(sentences)))
        return blocks


def drop_joined_runs(
    title: str, blocks: list[tuple[str, str]], avoid: set[tuple[str, ...]]
) -> list[tuple[str, str]]:
    """``blocks`` without those whose join with the text before forms an old run.

    Each sentence was drawn clean, but the last words of one and the first of
    the next can still line up with the old text.
    """
    kept: list[tuple[str, str]] = []
    text = title
    for block in blocks:
        joined = f"{text} {block[1]}"
        if not shingles(joined) & avoid:
            kept.append(block)
            text = joined
    return kept
