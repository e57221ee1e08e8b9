"""Walk the portal as each demo user: every page reachable by links from the home page, GET only.

Reports each link that answers anything but 200 or a redirect within the site (a refusal, a missing
page, an error, a redirect to sign in) and each page that shows a raw Python value or traceback.
Runs inside one transaction that is rolled back: the sign-ins and page views leave no trace.
"""

from __future__ import annotations

import json
import re
from collections import deque
from urllib.parse import urljoin, urlparse

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client

from accounts.demo import DEMO_USERS
from accounts.models import User

NOT_PAGES = re.compile(r"^/(static|media|api|logout|metrics)/|/(download|export)/?$|/add/$|/delete/$")
LINK = re.compile(r'<a\b[^>]*\bhref="([^"#]+)"')
# What a person should never read on a page: Python's own renderings of values and failures.
RAW = ("Traceback (most recent call last)", "{&#x27;", "object at 0x", "DoesNotExist", "NoReverseMatch")
ID = re.compile(r"[0-9a-f]{8,}|\d+")


class _Rollback(Exception):
    pass


def _shape(url: str) -> str:
    """The URL with ids blanked and query values dropped: a page of the same shape is walked twice at most."""
    path, _, query = url.partition("?")
    return ID.sub("N", path) + "?" + ",".join(sorted(part.split("=")[0] for part in query.split("&") if part))


class Command(BaseCommand):
    help = (
        "Walk every page reachable by links as each demo user (bootstrap_demo) and report dead ends: "
        "links answering 403, 404 or 500, redirects to sign in, raw values on a page. Changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", action="append", dest="users", help="Only this demo user (repeatable).")
        parser.add_argument("--limit", type=int, default=150, help="Pages per user at most (default 150).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, users=None, limit=150, json=False, **options):
        names = users or [spec.username for spec in DEMO_USERS]
        missing = set(names) - set(User.objects.filter(username__in=names).values_list("username", flat=True))
        if missing:
            raise CommandError(f"No such user: {', '.join(sorted(missing))} (run bootstrap_demo first).")
        report = {"pages": {}, "problems": []}
        try:
            with transaction.atomic():
                for name in names:
                    report["pages"][name] = self._walk(
                        User.objects.get(username=name), limit, report["problems"]
                    )
                raise _Rollback
        except _Rollback:
            pass
        if json:
            self.stdout.write(_dumps(report))
            return
        for name, count in report["pages"].items():
            self.stdout.write(f"{name}: {count} pages")
        for problem in report["problems"]:
            self.stdout.write(self.style.WARNING(" | ".join(problem.values())))
        self.stdout.write(f"problems: {len(report['problems'])}")

    def _walk(self, user, limit: int, problems: list[dict]) -> int:
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        queue, seen, shapes, count = deque([("/", "start")]), set(), {}, 0
        while queue and count < limit:
            url, source = queue.popleft()
            shape = _shape(url)
            if url in seen or shapes.get(shape, 0) >= 2:
                continue
            seen.add(url)
            shapes[shape] = shapes.get(shape, 0) + 1
            count += 1
            response = client.get(url)
            problem = {"user": user.username, "url": url, "linked_from": source}
            if response.status_code in (301, 302):
                location = response["Location"]
                if "login" in location:
                    problems.append({**problem, "answer": f"{response.status_code} to {location}"})
                else:
                    queue.append((urljoin(url, location), url))
                continue
            if response.status_code != 200:
                problems.append({**problem, "answer": str(response.status_code)})
                continue
            if "text/html" not in response.get("Content-Type", ""):
                continue
            body = response.content.decode("utf-8", "replace")
            for raw in RAW:
                if raw in body:
                    at = body.index(raw)
                    problems.append(
                        {**problem, "answer": "raw: " + " ".join(body[max(0, at - 80) : at + 80].split())}
                    )
            for href in LINK.findall(body):
                link = urlparse(urljoin(url, href.replace("&amp;", "&")))
                if link.netloc in ("", "localhost") and not NOT_PAGES.search(link.path):
                    queue.append((link.path + (f"?{link.query}" if link.query else ""), url))
        return count


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
