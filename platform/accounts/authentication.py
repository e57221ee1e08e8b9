import binascii
from hmac import compare_digest
from weakref import WeakKeyDictionary

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


class _TokenStatement:
    """The statement that finds an API token by its key prefix, with its user and the user's group
    names (one row per group, LEFT JOIN), and how to turn its rows into the ORM's instances.

    Written from the models' own tables and columns once per database connection; the values go through
    each field's own database converters (as the ORM applies them) and Model.from_db. The ORM built
    and compiled the same statement (a select_related join and an annotation) on every API call,
    which cost several times reading it."""

    def __init__(self, connection):
        token_model, user_model = get_token_model(), get_user_model()
        groups = user_model._meta.get_field("groups")
        group_model = groups.remote_field.model
        quote = connection.ops.quote_name
        self.token_fields = self._fields(token_model, "t", connection)
        self.user_fields = self._fields(user_model, "u", connection)
        columns = ", ".join(
            [f"t.{quote(field.column)}" for field, _ in self.token_fields]
            + [f"u.{quote(field.column)}" for field, _ in self.user_fields]
            + [f"g.{quote(group_model._meta.get_field('name').column)}"]
        )
        user_column = quote(token_model._meta.get_field("user").column)
        key_column = quote(token_model._meta.get_field("token_key").column)
        # identifiers only from the models' own table and column names; the key is a parameter
        self.sql = (
            f"SELECT {columns} FROM {quote(token_model._meta.db_table)} t"  # noqa: S608
            f" INNER JOIN {quote(user_model._meta.db_table)} u"
            f" ON u.{quote(user_model._meta.pk.column)} = t.{user_column}"
            f" LEFT JOIN {quote(groups.m2m_db_table())} ug ON ug.{quote(groups.m2m_column_name())}"
            f" = u.{quote(user_model._meta.pk.column)}"
            f" LEFT JOIN {quote(group_model._meta.db_table)} g ON g.{quote(group_model._meta.pk.column)}"
            f" = ug.{quote(groups.m2m_reverse_name())}"
            f" WHERE t.{key_column} = %s"
        )
        self.token_model, self.user_model = token_model, user_model
        self.token_names = [field.attname for field, _ in self.token_fields]
        self.user_names = [field.attname for field, _ in self.user_fields]
        self.token_pk = [field.primary_key for field, _ in self.token_fields].index(True)

    @staticmethod
    def _fields(model, alias: str, connection) -> list[tuple]:
        fields = []
        for field in model._meta.concrete_fields:
            column = field.get_col(alias)
            converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            fields.append((field, [(converter, column) for converter in converters]))
        return fields

    @staticmethod
    def _values(raw, fields, connection) -> list:
        values = []
        for value, (_field, converters) in zip(raw, fields, strict=True):
            for converter, column in converters:
                value = converter(value, column, connection)
            values.append(value)
        return values

    def candidates(self, connection, key_prefix: str) -> list[tuple[object, set[str]]]:
        """(token with its user loaded, the user's group names) for each token under the prefix."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [key_prefix])
            rows = cursor.fetchall()
        found: dict[object, tuple[object, set[str]]] = {}
        tokens = len(self.token_fields)
        users = tokens + len(self.user_fields)
        for row in rows:
            pk = row[self.token_pk]
            if pk not in found:
                token = self.token_model.from_db(
                    connection.alias,
                    self.token_names,
                    self._values(row[:tokens], self.token_fields, connection),
                )
                token.user = self.user_model.from_db(
                    connection.alias,
                    self.user_names,
                    self._values(row[tokens:users], self.user_fields, connection),
                )
                found[pk] = (token, set())
            if row[users] is not None:
                found[pk][1].add(row[users])
        return list(found.values())


# Per connection object (each thread has its own): the converters are bound to its operations.
_statements: WeakKeyDictionary = WeakKeyDictionary()


class _KnoxTokens(KnoxTokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        """knox's check (each token under the key's prefix: expiry, then the digest, then the user),
        in one statement that also reads the user's group names: the policy's roles (User.role_names)
        then need no query of their own on an API call."""
        message = _("Invalid token.")
        key = token.decode("utf-8")
        connection = connections[router.db_for_read(get_token_model())]
        statement = _statements.get(connection)
        if statement is None:
            statement = _statements[connection] = _TokenStatement(connection)
        for auth_token, names in statement.candidates(connection, key[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error) as error:
                raise exceptions.AuthenticationFailed(message) from error
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                auth_token.user._role_names = names  # User.role_names' per-instance cache
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)

    def _cleanup_token(self, auth_token) -> bool:
        """Only the presented token's own expiry. knox also reads and deletes the user's other expired
        tokens here, a second query on every API call; an expired token is refused (and deleted) when
        it is presented, and accounts.tokens.token_issue sweeps the user's expired ones."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class ApiTokenAuthentication(BaseAuthentication):
    """API tokens in `Authorization: Token <key>` or `Bearer <key>` (as OpenAI-compatible clients send).

    Only knox tokens are accepted: hashed at rest, expiring (accounts.tokens). The plaintext
    `rest_framework.authtoken` table is gone (accounts migration 0003 drops it).
    """

    _knox = _KnoxTokens()

    def authenticate(self, request):
        scheme, _, key = get_authorization_header(request).partition(b" ")
        if scheme.lower() not in (b"bearer", b"token"):
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("Invalid token header: no token after the scheme.")
        if b" " in key:
            raise exceptions.AuthenticationFailed("Invalid token header: the token must not contain spaces.")
        return self._knox.authenticate_credentials(key)

    def authenticate_header(self, request):
        return "Bearer"
