"""Every demo login (the README's) walks its menus and every link on the pages they open: each menu
entry answers 200, and no link on those pages leads to a refusal, a missing page or an error."""

import json
import re
from io import StringIO
from urllib.parse import urljoin, urlparse

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command

from accounts.demo import DEMO_USERS, create_demo_organisation
from accounts.models import User
from audit.models import Event
from portal.navigation import ACCOUNT, MAIN, items_for

# Not pages to walk: files, the API (JSON, walked by the schema tests), signing out.
NOT_PAGES = re.compile(r"^/(static|media|api|logout|metrics)/|/(download|export)/?$")
LINK = re.compile(r'<a\b[^>]*\bhref="([^"#]+)"')


def _links(html: str, base: str) -> set[str]:
    found = set()
    for href in LINK.findall(html):
        url = urlparse(urljoin(base, href.replace("&amp;", "&")))
        here = url.scheme in ("http", "https", "") and url.netloc in ("", "testserver")
        if here and not NOT_PAGES.search(url.path):
            found.add(url.path + (f"?{url.query}" if url.query else ""))
    return found


@pytest.mark.django_db
@pytest.mark.parametrize("username", [spec.username for spec in DEMO_USERS])
def test_a_demo_login_follows_its_menus_and_their_links_without_a_dead_end(client, username):
    create_demo_organisation(password="walk-password-42")
    user = User.objects.get(username=username)
    client.force_login(user)
    menu = [item["url"] for kind in (MAIN, ACCOUNT) for item in items_for(user, menu=kind)]
    assert len(menu) > 3, f"{username}: almost nothing to do ({menu})"
    linked: dict[str, str] = {}
    home = client.get("/", follow=True)  # to the role's home page
    assert home.status_code == 200 and home.redirect_chain, f"{username}: no home page"
    for url in [home.redirect_chain[-1][0], *menu]:
        response = client.get(url)
        assert response.status_code == 200, f"{username}: menu page {url} answered {response.status_code}"
        for link in _links(response.content.decode(), url):
            linked.setdefault(link, url)
    for link, source in sorted(linked.items()):
        if link in menu or link == "/":
            continue
        status = client.get(link).status_code
        assert status in (200, 302), f"{username}: {link} (linked from {source}) answered {status}"
        if status == 302:
            location = client.get(link)["Location"]
            assert "login" not in location, f"{username}: {link} (on {source}) sends to sign-in"


@pytest.mark.django_db
def test_walk_pages_walks_a_demo_login_and_leaves_nothing_behind(client):
    create_demo_organisation(password="walk-password-42")
    sessions_before = Session.objects.count()
    events_before = Event.objects.count()
    out = StringIO()
    call_command("walk_pages", "--user", "clinician", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["pages"]["clinician"] > 3 and report["problems"] == []
    assert Session.objects.count() == sessions_before and Event.objects.count() == events_before
    with pytest.raises(CommandError, match="nobody"):
        call_command("walk_pages", "--user", "nobody")
