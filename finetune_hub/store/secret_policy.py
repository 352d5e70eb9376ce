"""The no-secrets rule: what the store refuses to hold, checked at any depth.

>>> check_secret_free({"region": "us-east-1"}, "options")
>>> is_secret_key("openai_api_key")
True
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from finetune_hub.errors import SecretRefusedError

#: Key names (normalised to snake_case) that hold secrets; `openai_api_key` matches `api_key`.
SECRET_KEYS = frozenset(
    {"api_key", "apikey", "key", "secret", "token", "password", "passwd", "credential"}
    | {"credentials", "access_key", "secret_access_key", "session_token", "connection_string"}
    | {"sas", "authorization"}
)
#: Names that match SECRET_KEYS by suffix but are identifiers, not secrets.
NOT_SECRET_KEYS = frozenset({"idempotency_key", "client_request_token"})
#: URL query parameters that carry a signature or a key (pre-signed URLs, SAS URLs).
SECRET_QUERY_KEYS = SECRET_KEYS | {"sig", "signature"}
#: What a `credentials` value may say: where the credential comes from.
CREDENTIAL_SOURCES = ("env:", "profile:", "file:", "default-chain", "azure-identity:", "explicit")


# --- the no-secrets rule ----------------------------------------------------------------------


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower().replace("-", "_").replace(" ", "_")


def is_secret_key(key: str, names: frozenset[str] = SECRET_KEYS) -> bool:
    """Whether a key name says its value is a secret.

    >>> is_secret_key("OPENAI_API_KEY"), is_secret_key("sessionToken"), is_secret_key("region")
    (True, True, False)
    """
    norm = _snake(key)
    if norm in NOT_SECRET_KEYS:
        return False
    return norm in names or any(norm.endswith("_" + name) for name in names)


def _url_hides_secret(text: str) -> bool:
    if "://" not in text:
        return False
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return False
    query = parse_qsl(parts.query, keep_blank_values=True)
    return bool(password) or any(is_secret_key(k, SECRET_QUERY_KEYS) for k, _ in query)


def _refuse(where: str, why: str) -> SecretRefusedError:
    return SecretRefusedError(
        f"{where} {why}; the job store never holds secrets. Describe where the credential comes "
        "from instead, e.g. credentials={'api_key': 'env:OPENAI_API_KEY'}, and pass the value "
        "itself in code."
    )


def _walk(value: Any, where: str) -> Iterator[tuple[str, str | None, Any]]:
    """Yield (path, key, value) for every entry of nested dicts and lists, containers included."""
    if isinstance(value, Mapping):
        items = [(f"{where}[{str(k)!r}]", str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(f"{where}[{i}]", None, v) for i, v in enumerate(value)]
    else:
        return
    for path, key, item in items:
        yield path, key, item
        yield from _walk(item, path)


def check_secret_free(value: Any, where: str, *, check_keys: bool = True) -> None:
    """Raise `SecretRefusedError` if a key (at any depth) or a URL in `value` holds a secret.

    >>> check_secret_free({"region": "us-east-1"}, "options")
    >>> check_secret_free({"auth": {"token": "x"}}, "extra")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    finetune_hub.store.sqlite.SecretRefusedError: extra['auth']['token'] is a secret's key name; ...
    """
    for path, key, item in [(where, None, value), *_walk(value, where)]:
        if check_keys and key is not None and is_secret_key(key):
            raise _refuse(path, "is a secret's key name")
        if isinstance(item, str) and _url_hides_secret(item):
            raise _refuse(path, "is a URL carrying a password, key or signature")


def check_credentials(value: Mapping[str, Any], where: str = "credentials") -> None:
    """Every leaf must be a description of a source: `env:NAME`, `profile:NAME`, `file:PATH`,
    `default-chain`, `azure-identity:KIND` or `explicit` (passed in code, not stored).

    >>> check_credentials({"api_key": "env:OPENAI_API_KEY"})
    """
    for path, _key, item in _walk(value, where):
        if isinstance(item, Mapping | list | tuple):
            continue  # its own entries are checked
        if not (isinstance(item, str) and item.startswith(CREDENTIAL_SOURCES)):
            sources = ", ".join(repr(s) for s in CREDENTIAL_SOURCES)
            raise _refuse(
                path, f"is not a description of where a credential comes from ({sources})"
            )


def check_record_fields(fields: Mapping[str, Any]) -> None:
    """Refuse secrets in the fields of a job (or a deployment) about to be written."""
    for name, value in fields.items():
        if name in ("options", "extra"):
            check_secret_free(value, name)
        elif name == "credentials":
            check_credentials(value)
        elif name in ("training_file", "validation_file", "data_refs", "endpoint", "datasets"):
            check_secret_free(value, name, check_keys=False)
