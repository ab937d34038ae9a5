"""Who is who: customer identity signed by the shop (an HS256 JWT whose `sub` is the customer id, `exp` required),
staff sessions (a JWT of the same key with the staff audience) and staff password hashes (argon2).

    shopdesk auth token c000001 --ttl 3600     # a token for integrators and tests (needs SHOPDESK_SECRET_KEY)

The shop's backend signs the same way with the secret it shares with shopdesk (README: "Putting shopdesk on your site").
A token is a credential: nothing here logs it or puts it in an error message.
"""

from __future__ import annotations

import time

import jwt
import typer
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shopdesk.output import UserError, cli_errors
from shopdesk.settings import Settings

ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600
LEEWAY_S = 10  # clock skew tolerated between the shop's servers and ours
STAFF_AUDIENCE = "shopdesk-staff"  # a staff session token carries it; a customer token never does
STAFF_SESSION_S = 8 * 3600  # a staff sign-in lasts one working day

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class TokenError(Exception):
    """A token that does not prove who the customer is (forged, expired, malformed); the message is for a person."""


def issue_token(customer_id: str, ttl: int, key: str) -> str:
    """A token saying the bearer is `customer_id`, valid for `ttl` seconds."""
    if not customer_id:
        raise ValueError("a token needs a customer id")
    if ttl <= 0:
        raise ValueError("a token's lifetime must be positive")
    return jwt.encode({"sub": customer_id, "exp": int(time.time()) + ttl}, key, algorithm=ALGORITHM)


def verify_token(token: str, key: str) -> str:
    """The customer id a valid token names; TokenError if it is forged, expired or malformed."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], leeway=LEEWAY_S,
                            options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("Your sign-in has expired. Please sign in again on the shop's site.") from None
    except jwt.InvalidSignatureError:
        raise TokenError("This sign-in token was not signed by the shop.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"This sign-in token lacks its '{exc.claim}' claim.") from None
    except jwt.InvalidTokenError:  # malformed, wrong algorithm, a sub that is not a string, ...
        raise TokenError("This sign-in token is not valid.") from None
    if not claims["sub"]:
        raise TokenError("This sign-in token names no customer.")
    return claims["sub"]


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (salted; the parameters are stored in the hash)."""
    if not password:
        raise ValueError("a password may not be empty")
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from (constant time inside argon2)."""
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def issue_staff_token(name: str, role: str, key: str, ttl: int = STAFF_SESSION_S) -> str:
    """A staff session: `sub` is the staff name, `role` what they may do; it expires after `ttl` seconds."""
    claims = {"sub": name, "role": role, "aud": STAFF_AUDIENCE, "exp": int(time.time()) + ttl}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_staff_token(token: str, key: str) -> tuple[str, str]:
    """(name, role) of a valid staff session token; TokenError otherwise (customer tokens included)."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], leeway=LEEWAY_S, audience=STAFF_AUDIENCE,
                            options={"require": ["sub", "exp", "aud", "role"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("Your staff session has expired. Please sign in again.") from None
    except jwt.InvalidTokenError:
        raise TokenError("This is not a valid staff session. Please sign in.") from None
    return claims["sub"], claims["role"]


def secret_key(settings: Settings) -> str:
    """The shared signing secret, or UserError saying how to set it."""
    if settings.secret_key is None:
        raise UserError(
            "SHOPDESK_SECRET_KEY is not set: set it to a secret of at least 32 characters that the shop's site shares "
            "with shopdesk, e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return settings.secret_key.get_secret_value()


auth_app = typer.Typer(help="Customer identity: tokens signed with SHOPDESK_SECRET_KEY.", no_args_is_help=True)


@auth_app.command("token")
@cli_errors
def token_command(
    customer_id: str = typer.Argument(..., help="The customer id the token names (its `sub`)."),
    ttl: int = typer.Option(DEFAULT_TTL_S, "--ttl", min=1, help="Seconds until the token expires."),
) -> None:
    """Print a token for CUSTOMER_ID, as the shop's backend would sign it: `shopdesk auth token c000001 --ttl 600`."""
    from pydantic import ValidationError

    from shopdesk.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:  # its text never includes the values (hide_input_in_errors)
        problems = "; ".join(f"SHOPDESK_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise UserError(f"invalid settings: {problems}") from None
    typer.echo(issue_token(customer_id, ttl, secret_key(settings)))


def register(app: typer.Typer) -> None:
    """Add the `auth` command group to the CLI."""
    app.add_typer(auth_app, name="auth")
