"""Deterministic prose for the replica, written for this project.

Sentences are assembled from slot lists so that a site of 20,000 pages has
almost no repeated paragraph: a boilerplate detector must not be able to cheat
by treating any recurring sentence as template. Everything draws from one
seeded random.Random, so the same seed gives the same site byte for byte.
"""

from __future__ import annotations

import random
import re

from .calendar import MONTH_NAMES

TOPICS = (
    "urgent care",
    "mental health",
    "diabetes care",
    "maternity services",
    "GP access",
    "community pharmacy",
    "carers' support",
    "dementia care",
    "children's services",
    "cancer screening",
    "stroke rehabilitation",
    "end of life care",
    "learning disability support",
    "musculoskeletal services",
    "respiratory care",
    "sexual health",
    "eye care",
    "hearing services",
    "wheelchair services",
    "district nursing",
    "falls prevention",
    "weight management",
    "stop smoking support",
    "heart health",
    "kidney care",
    "social prescribing",
    "hospital discharge",
    "patient transport",
    "out-of-hours dentistry",
    "physiotherapy",
    "podiatry",
    "speech and language therapy",
    "health visiting",
    "school nursing",
    "continence care",
    "autism assessment",
    "memory clinics",
    "wound care",
    "flu vaccination",
    "prescription ordering",
    "minor injuries",
    "self care",
    "integrated neighbourhood teams",
)

SUBJECTS = (
    "The CCG",
    "Our commissioning team",
    "The governing body",
    "Local GP practices",
    "The borough's health and care partners",
    "Our patient engagement group",
    "The joint commissioning committee",
    "Community health teams",
    "Hospital colleagues",
    "Our clinical leads",
    "Voluntary sector partners",
    "The council's public health team",
    "Practice nurses",
    "Neighbourhood teams",
    "The quality team",
    "Our medicines management team",
)

VERBS = (
    "is reviewing",
    "has redesigned",
    "will expand",
    "is listening to feedback on",
    "has agreed new funding for",
    "is working to improve",
    "has published a plan for",
    "continues to monitor",
    "is bringing together",
    "has simplified",
    "will re-procure",
    "is testing a new model of",
    "has extended opening hours for",
    "is asking residents about",
    "has joined up",
    "will evaluate",
)

QUALIFIERS = (
    "so that people get help closer to home",
    "to cut waiting times",
    "in line with the locality plan",
    "after listening to patients and carers",
    "with a focus on the people who need it most",
    "to make services easier to find",
    "so that fewer people need a hospital stay",
    "while keeping services safe",
    "using what residents told us last year",
    "alongside the voluntary sector",
    "to reduce the number of missed appointments",
    "to make better use of public money",
    "so that care feels joined up",
    "with clinicians from every neighbourhood",
    "to support people to stay independent",
    "without adding to the cost of care",
)

WHEN = (
    "this spring",
    "over the next two years",
    "from April",
    "during the winter",
    "by the end of the year",
    "this autumn",
    "in the coming months",
    "from next September",
    "before the summer",
    "throughout 2019",
    "since last year",
    "over the last six months",
)

OPENERS = (
    "In {town}, {lower_subject} {verb} {topic} {qual}.",
    "{subject} {verb} {topic} {when}, {qual}.",
    "{when_cap}, {lower_subject} {verb} {topic} across {town} and {town2}.",
    "People in {town} told us that {topic} could be better; {lower_subject} {verb} it {when}.",
    "{subject} {verb} {topic} {qual}, starting in {town}.",
)

FOLLOWERS = (
    "About {num} people use {topic} in the borough each year.",
    "The work is expected to cost around £{money} and will be reviewed after {months} months.",
    "Residents can share their views by filling in a short survey or coming to a drop-in session.",
    "A report will go to the governing body meeting in {month}.",
    "Clinicians from {num_small} practices have helped to shape the proposals.",
    "We will publish the results and explain how feedback changed our plans.",
    "Anyone who needs the information in another format or language can ask us for a copy.",
    "The changes do not affect how you book an appointment with your own GP.",
    "Local people asked for clearer information about where to go and when.",
    "Waiting times for {topic} fell by {pct} per cent over the same period.",
    "Staff at {place} will continue to offer appointments during the change.",
    "More detail is set out in the documents at the bottom of this page.",
    "We expect to make a final decision in {month} once all feedback has been considered.",
    "The service is free and you do not need a referral from your GP.",
    "Partners from the council and the hospital trust sit on the steering group.",
    "Carers told us they wanted one number to call rather than several.",
    "The pilot in {town} will be extended if it meets its targets.",
    "Feedback from {num_small} community groups was collected at {num_small2} events.",
)

MONTHS = MONTH_NAMES

TITLE_PATTERNS = (
    "Improving {topic} in {town}",
    "Your views on {topic}",
    "Changes to {topic}",
    "{Topic} review",
    "A new approach to {topic}",
    "{Topic}: what you need to know",
    "Planning {topic} for the future",
    "{Topic} in the community",
    "Getting help with {topic}",
    "{Topic} services explained",
    "Supporting people with {topic}",
    "{Topic} update",
)

NEWS_PATTERNS = (
    "CCG welcomes new {topic} service in {town}",
    "{Town} residents invited to talk about {topic}",
    "Funding boost for {topic}",
    "{Topic} team wins regional award",
    "Extended hours for {topic} in {town}",
    "Survey launched on {topic}",
    "Governing body approves {topic} plan",
    "{Topic} drop-in sessions announced",
    "New guide to {topic} published",
    "{Town} pilot for {topic} extended",
)

REPORT_PATTERNS = (
    "Engagement report: {topic}",
    "Consultation on {topic}",
    "Review of {topic}: findings",
    "{Topic} engagement summary",
)

PART_HEADINGS = (
    "Background",
    "What we asked",
    "Who we heard from",
    "What you told us",
    "What difference the feedback made",
    "What happens next",
    "How we ran the engagement",
    "Equality impact",
    "Options considered",
    "Costs and benefits",
    "Timeline",
    "Risks and mitigations",
    "Appendix: survey questions",
    "Appendix: event notes",
    "Glossary",
    "Frequently asked questions",
    "Related documents",
    "Contact the team",
    "Summary of responses",
    "Recommendations",
)

SUBHEADINGS = (
    "Why are we doing this?",
    "Who can use the service?",
    "How to get involved",
    "What this means for you",
    "Key facts",
    "Where to find us",
    "Opening times",
    "What people told us",
    "Our next steps",
    "Further information",
    "Eligibility",
    "How to refer",
    "Timescales",
    "Questions and answers",
)

LIST_ITEMS = (
    "speak to your GP practice reception team",
    "call NHS 111 for urgent advice",
    "visit your local pharmacy for minor ailments",
    "use the online self-referral form",
    "ask for an interpreter when you book",
    "bring a list of your current medicines",
    "tell us if you need step-free access",
    "check the opening times before you travel",
    "join the patient participation group",
    "read the easy-read version of the plan",
    "come along to a drop-in session",
    "complete the survey before the closing date",
    "email the engagement team with your questions",
    "follow us for updates",
    "book a review with the practice nurse",
    "ask about support for carers",
    "request a copy in large print",
    "bring someone with you if you wish",
)


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower().replace("'", "")).strip("-")
    return slug[:60].rstrip("-")


class Prose:
    """Generates titles, sentences, paragraphs and lists from one seeded RNG."""

    def __init__(self, rng: random.Random, towns: tuple[str, ...], places: tuple[str, ...]) -> None:
        self.rng = rng
        self.towns = towns
        self.places = places

    def pick(self, seq: tuple[str, ...] | list[str]) -> str:
        return seq[self.rng.randrange(len(seq))]

    def topic(self) -> str:
        return self.pick(TOPICS)

    def _fill(self, pattern: str, topic: str) -> str:
        r = self.rng
        town, town2 = r.sample(self.towns, 2) if len(self.towns) > 1 else (self.towns[0],) * 2
        subject = self.pick(SUBJECTS)
        when = self.pick(WHEN)
        values = {
            "topic": topic,
            "Topic": topic[0].upper() + topic[1:],
            "town": town,
            "Town": town,
            "town2": town2,
            "subject": subject,
            "lower_subject": subject[0].lower() + subject[1:]
            if subject.startswith("The") or subject.startswith("Our")
            else subject,
            "verb": self.pick(VERBS),
            "qual": self.pick(QUALIFIERS),
            "when": when,
            "when_cap": when[0].upper() + when[1:],
            "num": f"{r.randrange(2, 60) * 250:,}",
            "num_small": str(r.randrange(3, 40)),
            "num_small2": str(r.randrange(2, 25)),
            "money": f"{r.randrange(5, 900) * 1000:,}",
            "months": str(r.choice((6, 9, 12, 18, 24))),
            "month": self.pick(MONTHS),
            "pct": str(r.randrange(4, 38)),
            "place": self.pick(self.places),
        }
        return pattern.format(**values)

    def title(self, topic: str, patterns: tuple[str, ...] = TITLE_PATTERNS) -> str:
        return self._fill(self.pick(patterns), topic)

    def sentence(self, topic: str, opener: bool = False) -> str:
        return self._fill(self.pick(OPENERS if opener else FOLLOWERS), topic)

    def paragraph(self, topic: str, sentences: int | None = None) -> str:
        n = sentences if sentences is not None else self.rng.randint(2, 5)
        out = [self.sentence(topic, opener=True)]
        seen = set(out)
        while len(out) < n:
            s = self.sentence(topic)
            if s not in seen:  # keep paragraphs free of verbatim repeats
                seen.add(s)
                out.append(s)
        return " ".join(out)

    def list_items(self, n: int) -> list[str]:
        items = self.rng.sample(LIST_ITEMS, min(n, len(LIST_ITEMS)))
        return [i[0].upper() + i[1:] for i in items]

    def subheading(self) -> str:
        return self.pick(SUBHEADINGS)
