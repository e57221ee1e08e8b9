from django.core.management.base import BaseCommand, CommandError

from accounts.demo import DEMO_USERS, create_demo_organisation
from ops import env
from portal.demo import steps


class Command(BaseCommand):
    help = (
        "Create the demo organisation, one demo user per role and each app's demo data. Idempotent. "
        "Passwords are printed once, when a user is created (set SUITE_DEMO_PASSWORD to choose one). DEMO ONLY."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--step",
            action="append",
            dest="steps",
            metavar="NAME",
            help="Run only this demo-data step (repeatable); the organisation and users are always created.",
        )
        parser.add_argument(
            "--no-data", action="store_true", help="Create the organisation and users only, no app demo data."
        )

    def handle(self, *args, **options):
        password = env.env_str("SUITE_DEMO_PASSWORD", "") or None
        results = create_demo_organisation(password=password)
        roles = {spec.username: ", ".join(r.label for r in spec.roles) for spec in DEMO_USERS}
        new = [(name, secret) for name, secret in results if secret]
        if new:
            self.stdout.write(
                self.style.WARNING("Demo users created (DEMO ONLY; passwords are shown this once):")
            )
            for name, secret in new:
                self.stdout.write(f"  {name:<14} {secret:<22} {roles[name]}")
        existing = [name for name, secret in results if not secret]
        if existing:
            self.stdout.write(f"Demo users already present (passwords unchanged): {', '.join(existing)}")
        all_steps = [] if options["no_data"] else steps()
        if options["steps"]:
            unknown = set(options["steps"]) - {step.name for step in all_steps}
            if unknown:
                known = ", ".join(step.name for step in steps())
                raise CommandError(
                    f"No demo step named {', '.join(sorted(unknown))}; the steps are: {known}."
                )
            all_steps = [step for step in all_steps if step.name in options["steps"]]
        for index, step in enumerate(all_steps, start=1):
            self.stdout.write(f"[{index}/{len(all_steps)}] demo data: {step.name}")
            step.run(lambda message: self.stdout.write(f"    {message}"))
        self.stdout.write(self.style.SUCCESS("Demo organisation ready."))
