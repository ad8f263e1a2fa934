"""The one error type of the auth library, with a reason enum used verbatim as an error code."""

from enum import StrEnum


class AuthReason(StrEnum):
    """Why a credential was refused; values are stable lower_snake error codes."""

    MISSING_TOKEN = "missing_token"  # noqa: S105 - an error code, not a secret
    MALFORMED_TOKEN = "malformed_token"  # noqa: S105 - an error code, not a secret
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_PARTY = "wrong_party"
    PENDING_SESSION = "pending_session"
    NOT_A_SESSION_TOKEN = "not_a_session_token"  # noqa: S105 - an error code, not a secret
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    KEYS_UNAVAILABLE = "keys_unavailable"
    MISSING_CREDENTIALS = "missing_credentials"
    INVALID_CREDENTIALS = "invalid_credentials"
    PERMISSION_DENIED = "permission_denied"
    ORG_ROLE_REQUIRED = "org_role_required"


_MESSAGES: dict[AuthReason, str] = {
    AuthReason.MISSING_TOKEN: "No session token was sent.",
    AuthReason.MALFORMED_TOKEN: "The session token is malformed.",
    AuthReason.EXPIRED: "The session token has expired.",
    AuthReason.NOT_YET_VALID: "The session token is not valid yet.",
    AuthReason.BAD_SIGNATURE: "The session token signature is invalid.",
    AuthReason.UNKNOWN_KEY: "The session token was signed with an unknown key.",
    AuthReason.WRONG_ISSUER: "The session token was issued by an untrusted issuer.",
    AuthReason.WRONG_PARTY: "The session token was issued to an unauthorized party.",
    AuthReason.PENDING_SESSION: "The session is pending and cannot be used yet.",
    AuthReason.NOT_A_SESSION_TOKEN: "The token is not a Clerk session token.",
    AuthReason.UNSUPPORTED_ALGORITHM: "The session token uses an unsupported algorithm.",
    AuthReason.KEYS_UNAVAILABLE: "The signing keys are temporarily unavailable.",
    AuthReason.MISSING_CREDENTIALS: "No service credentials were sent.",
    AuthReason.INVALID_CREDENTIALS: "The credentials are invalid.",
    AuthReason.PERMISSION_DENIED: "The caller is not allowed to perform this operation.",
    AuthReason.ORG_ROLE_REQUIRED: "Only the organization's billing managers may do this.",
}


class AuthError(Exception):
    """A refused credential: `reason` is the machine code, `message` is safe to show a client."""

    def __init__(self, reason: AuthReason, message: str | None = None) -> None:
        self.reason = reason
        self.message = message or _MESSAGES[reason]
        super().__init__(reason, self.message)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
