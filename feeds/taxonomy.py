"""Our academic speaker roles mapped onto the Podcasting 2.0 person taxonomy (taxonomy.json).

The taxonomy has no chair, discussant or panellist; apps treat unknown roles as "host", so we
translate to the nearest official role and keep the academic role in our own metadata.
"""

from __future__ import annotations

from archive.models import ROLE_ALIASES

CAST = "cast"

# Role and group as spelled in taxonomy.json, lower case (the spec says they are case-insensitive).
# tests/test_feeds_build.py checks that every role in archive.models.ACADEMIC_ROLES is here.
PERSON_ROLES: dict[str, tuple[str, str]] = {
    "host": ("host", CAST),
    "chair": ("host", CAST),
    "moderator": ("host", CAST),
    "convenor": ("host", CAST),
    "interviewer": ("host", CAST),
    "co-host": ("co-host", CAST),
    "speaker": ("guest", CAST),
    "lecturer": ("guest", CAST),
    "discussant": ("guest", CAST),
    "panellist": ("guest", CAST),
    "respondent": ("guest", CAST),
    "guest": ("guest", CAST),
    "interviewee": ("guest", CAST),
    "narrator": ("narrator", CAST),
    "organiser": ("production coordinator", "administration"),
}


def person_role(academic_role: str) -> tuple[str, str]:
    """(role, group) for podcast:person; unknown roles count as guests rather than hosts."""
    key = " ".join(academic_role.lower().split())
    return PERSON_ROLES.get(ROLE_ALIASES.get(key, key), ("guest", CAST))
