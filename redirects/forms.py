"""A CMS's other URL forms, answered by nginx with no row of their own.

A Joomla page answers under URLs nobody crawled: ``/index.php/<path>`` for
``/<path>``, ``id=112:flu-clinics`` for ``id=112``, any ``?format=feed``.
The profile names these forms (``[redirects] cms``, see
``sunset/profiles/cms/``); the site carries them into ``redirects.conf``
(:class:`redirects.model.Site`), where a few small maps rewrite what the
three lookup maps are keyed on:

``$sunset_uri``
    ``$uri`` without the front controller: ``/index.php/your-ccg/news`` is
    looked up as ``/your-ccg/news`` in the canonical and path maps.
``$sunset_arg_<id>``
    the id parameter's leading number when an alias follows it
    (``112:flu-clinics``, ``112%3Aflu-clinics``, ``112-flu-clinics``); the
    canonical key holds it in place of ``$arg_<id>``.
``$sunset_feed``
    the feed target when a ``name=value`` feed parameter is present; tried
    after the exact map and before the canonical one.

The ids themselves are learnt from the crawl (:mod:`redirects.targets`
writes a row for each form URL of each known id), so the rules here only
have to fold the spellings together, which a map's regex entries can do in
the Debian package's nginx. :class:`NginxForms` is the one place that knows
both the config text and the same rules in Python, which
:class:`redirects.nginx.RedirectPlan` uses to predict nginx's answers.
"""

from __future__ import annotations

import re

from sunset.nginx import quote

# Named captures: positional ones ($1) are shared by every regex that runs
# in a request, so one map could see another's.
_REST = "sunset_after_front_controller"
_NUMBER = "sunset_id_number"
# Joomla reads an id as an integer: "112:alias" and "112-alias" are 112.
_ID_REGEX = "^(?<" + _NUMBER + ">[0-9]+)[^0-9]"
_ID_PY = re.compile(rb"^([0-9]+)[^0-9]")


class NginxForms:
    """The URL-form rules of one site: nginx's config text and the same rules in Python."""

    def __init__(
        self,
        front_controller: str = "",
        id_param: str = "",
        feed_params: tuple[str, ...] = (),
        feed_target: str = "",
    ) -> None:
        self.front_controller = front_controller
        self.id_param = id_param.lower()
        self.feed_params = tuple(p for p in feed_params if "=" in p) if feed_target else ()
        self.feed_target = feed_target if self.feed_params else ""
        self._front = (
            re.compile(rb"^" + re.escape(front_controller.encode("ascii")) + rb"(/.+)$", re.I)
            if front_controller
            else None
        )
        # The feed parameters' names, once each, in order: the feed map's source.
        self._feed_names = tuple(
            dict.fromkeys(p.split("=", 1)[0].lower() for p in self.feed_params)
        )
        self._feed = [
            re.compile(rb"&" + re.escape(p.lower().encode("ascii")) + rb"(?:&|$)", re.I)
            for p in self.feed_params
        ]

    def __bool__(self) -> bool:
        return bool(self._front or self.id_param or self.feed_params)

    # -- what nginx makes of a request ------------------------------------

    def uri(self, uri: bytes) -> bytes:
        """``$sunset_uri``: ``$uri`` without the front controller."""
        if self._front is not None and (m := self._front.match(uri)):
            return m.group(1)
        return uri

    def arg(self, name: str, value: bytes) -> bytes:
        """The value the canonical key holds for argument ``name`` (lower case)."""
        if name == self.id_param and (m := _ID_PY.match(value)):
            return m.group(1)
        return value

    def feed(self, args: bytes) -> str:
        """``$sunset_feed``: the feed target if ``args`` ask for a feed, else ""."""
        if not self._feed:
            return ""
        from .nginx import nginx_arg

        source = b"".join(
            b"&" + name.encode("ascii") + b"=" + nginx_arg(args, name) for name in self._feed_names
        )
        return self.feed_target if any(r.search(source) for r in self._feed) else ""

    # -- the config text ------------------------------------------------------

    @property
    def uri_variable(self) -> str:
        return "$sunset_uri" if self._front is not None else "$uri"

    def arg_variable(self, name: str) -> str:
        """The variable the canonical key reads argument ``name`` from."""
        if self.id_param and name.lower() == self.id_param:
            return f"$sunset_arg_{name}"
        return f"$arg_{name}"

    def conf(self, params: tuple[str, ...], feed_value: str) -> str:
        """The map blocks defining the variables above (``feed_value``: quoted map value)."""
        blocks: list[str] = []
        if self._front is not None:
            regex = "~*^" + re.escape(self.front_controller) + f"(?<{_REST}>/.+)$"
            blocks.append(
                f"# {self.front_controller}/<path> shows /<path>.\n"
                "map $uri $sunset_uri {\n"
                "    default $uri;\n"
                f"    {quote(regex)} ${_REST};\n"
                "}\n"
            )
        for name in params:
            if self.id_param and name.lower() == self.id_param:
                blocks.append(
                    f"# {name}=112:alias (or 112-alias) is item 112.\n"
                    f"map $arg_{name} $sunset_arg_{name} {{\n"
                    f"    default $arg_{name};\n"
                    f"    {quote('~' + _ID_REGEX)} ${_NUMBER};\n"
                    "}\n"
                )
        if self.feed_params:
            source = "".join(f"&{name}=$arg_{name}" for name in self._feed_names)
            lines = "".join(
                f"    {quote('~*&' + re.escape(p) + '(&|$)')} {feed_value};\n"
                for p in self.feed_params
            )
            blocks.append(
                "# A feed, whatever page it was of: the new site's feed.\n"
                f"map {quote(source)} $sunset_feed {{\n"
                '    default "";\n'
                f"{lines}"
                "}\n"
            )
        return "\n".join(blocks)
