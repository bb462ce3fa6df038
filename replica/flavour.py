"""What makes a replica look like one particular organisation's site.

The generator is generic: it builds a Joomla-era public-body site and its
successor. A Flavour supplies the names, hosts and section layout, so the
Wigan CCG replica is data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    subsections: tuple[tuple[str, str], ...]  # (slug, title), in menu order
    new_section: str  # path on the successor site that replaces this section


@dataclass(frozen=True)
class Flavour:
    key: str
    org_name: str
    org_short: str
    towns: tuple[str, ...]
    places: tuple[str, ...]  # clinics and hospitals the prose may mention
    legacy_host: str
    legacy_aliases: tuple[
        str, ...
    ]  # other names the old server answers (redirected to legacy_host)
    new_host: str
    new_site_name: str
    phone: str
    email: str
    frozen: str  # ISO date the site stopped being updated
    frozen_words: str  # the same date as the popup writes it
    sections: tuple[Section, ...]
    new_sections: tuple[tuple[str, str], ...] = field(default=())  # (path, title)
    campaigns: tuple[tuple[str, str], ...] = field(default=())  # top-level new-only pages

    @property
    def tagline(self) -> str:
        towns = ", ".join(self.towns[:-1]) + " and " + self.towns[-1]
        return f"{self.org_name} plans and buys the local NHS services used by people in {towns}."


WIGAN = Flavour(
    key="wigan",
    org_name="NHS Wigan Borough Clinical Commissioning Group",
    org_short="Wigan Borough CCG",
    towns=("Ashton", "Leigh", "Wigan"),
    places=(
        "the Royal Albert Edward Infirmary",
        "Leigh Infirmary",
        "Wrightington Hospital",
        "Boston House",
        "the Life Centre",
        "Pemberton Health Centre",
        "Hindley Health Centre",
        "Tyldesley Clinic",
        "Atherton Health Centre",
        "Standish Clinic",
        "Ince Clinic",
    ),
    legacy_host="www.wiganboroughccg.nhs.uk",
    legacy_aliases=("wiganboroughccg.nhs.uk",),
    new_host="healthierwigan.nhs.uk",
    new_site_name="Healthier Wigan",
    # A number from Ofcom's range reserved for drama, so the replica never
    # publishes a real line; likewise the mailbox is invented.
    phone="01632 960 482",
    email="contact@wiganboroughccg.nhs.uk",
    frozen="2019-11-04",
    frozen_words="4th November 2019",
    sections=(
        Section(
            "your-ccg",
            "Your CCG",
            (
                ("about-us", "About us"),
                ("our-approach", "Our approach"),
                ("governing-body", "Governing body"),
                ("publications", "Publications"),
                ("working-with-partners", "Working with partners"),
            ),
            "/about-us/",
        ),
        Section(
            "get-involved",
            "Get involved",
            (
                ("improving-our-local-nhs", "Improving our local NHS"),
                ("patient-groups", "Patient groups"),
                ("our-approach", "Our approach to engagement"),
                ("volunteering", "Volunteering"),
            ),
            "/get-involved/",
        ),
        Section(
            "your-health",
            "Your health",
            (
                ("staying-well", "Staying well"),
                ("long-term-conditions", "Long-term conditions"),
                ("medicines", "Medicines"),
                ("mental-health", "Mental health"),
                ("children-and-families", "Children and families"),
            ),
            "/services/",
        ),
        Section(
            "here-to-help",
            "Here to help",
            (
                ("choosing-the-right-service", "Choosing the right service"),
                ("urgent-care", "Urgent care"),
                ("complaints", "Comments and complaints"),
                ("carers", "Carers"),
            ),
            "/services/",
        ),
        Section(
            "shape-your-nhs",
            "Shape your NHS",
            (
                ("consultations", "Consultations"),
                ("engagement-reports", "Engagement reports"),
                ("you-said-we-did", "You said, we did"),
            ),
            "/get-involved/",
        ),
    ),
    new_sections=(
        ("/about-us/", "About us"),
        ("/about-us/governance/", "Governance"),
        ("/about-us/commissioning/", "Commissioning"),
        ("/services/", "Services"),
        ("/get-involved/", "Get involved"),
        ("/contact-us/", "Contact us"),
    ),
    campaigns=(
        ("/stay-well-this-winter/", "Stay well this winter"),
        ("/know-your-numbers/", "Know your numbers"),
        ("/be-a-healthier-wigan/", "Be a healthier Wigan"),
    ),
)

FLAVOURS = {WIGAN.key: WIGAN}
