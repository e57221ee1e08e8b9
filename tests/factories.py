"""Factories for test data. Roles are real groups created by the accounts migrations."""

import factory
from django.contrib.auth.models import Group

from accounts.models import User

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    department = ""
    site = ""
    certifications = factory.LazyFunction(list)

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or PASSWORD)
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set([Group.objects.get_or_create(name=str(role))[0] for role in extracted])
            self._role_names = None


def api_key(user) -> str:
    """A fresh knox API token for `user` (hashed at rest, expiring): the key to send as Token/Bearer."""
    from knox.models import AuthToken

    return AuthToken.objects.create(user=user)[1]
