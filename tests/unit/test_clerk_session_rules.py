"""Only Clerk session tokens are sessions; a cookie's token must name an authorized party; the
organization's role and permissions come out of v1 and v2 claims; and who manages billing."""

from typing import Any

import jwt
import pytest
from tatame_devstack.dev_issuer import organization_claims

from services.auth.clerk import Session
from services.auth.errors import AuthError, AuthReason
from services.auth.org_roles import BillingManagers
from services.auth.session_claims import SESSION_CATEGORY, UNCATEGORIZED
from tests.unit.test_clerk_verifier import (
    APP,
    DROP,
    KID,
    SIGNING_KEY,
    claims,
    pem_verifier,
    refusal,
)

TEMPLATE_CATEGORY = "cl_B7d4PD222AAA"  # Clerk's JWT-template category
M2M_CATEGORY = "cl_B7d4PD333AAA"


def sign_with_header(payload: dict[str, Any], **header: Any) -> str:
    """A token signed with the instance key and extra JOSE header members."""
    return jwt.encode(payload, SIGNING_KEY, algorithm="RS256", headers={"kid": KID, **header})


# --- only session tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "at+jwt"},
        {"typ": "application/at+jwt"},
        {"typ": "AT+JWT"},
        {"typ": "JOSE"},
        {"typ": 1},
        {"cat": TEMPLATE_CATEGORY},
        {"cat": M2M_CATEGORY},
        {"cat": ["cl_B7d4PD111AAA"]},
    ],
    ids=["oauth", "oauth-media-type", "oauth-upper", "jose", "int-typ", "template", "m2m", "list"],
)
async def test_signed_tokens_of_another_kind_are_refused_as_not_a_session(
    header: dict[str, Any],
) -> None:
    token = sign_with_header(claims(), **header)
    assert await refusal(pem_verifier(), token) is AuthReason.NOT_A_SESSION_TOKEN


@pytest.mark.parametrize(
    "header",
    [{}, {"typ": "JWT"}, {"typ": "jwt"}, {"cat": SESSION_CATEGORY}, {"cat": UNCATEGORIZED}],
    ids=["bare", "jwt", "jwt-lower", "session-category", "uncategorized-instance"],
)
async def test_session_tokens_are_accepted_with_or_without_typ_and_category(
    header: dict[str, Any],
) -> None:
    session = await pem_verifier().verify(sign_with_header(claims(), **header))
    assert session.session_id == "sess_abc"


async def test_a_token_without_a_session_id_is_refused_as_not_a_session() -> None:
    """A JWT-template token signed before Clerk stamped categories: valid, but no `sid`."""
    token = sign_with_header(claims(sid=DROP, v=DROP, sts=DROP))
    assert await refusal(pem_verifier(), token) is AuthReason.NOT_A_SESSION_TOKEN


async def test_a_machine_jwt_is_refused_as_not_a_session() -> None:
    token = sign_with_header(claims(sub="mch_2abc"))
    assert await refusal(pem_verifier(), token) is AuthReason.NOT_A_SESSION_TOKEN


@pytest.mark.parametrize("token", ["mt_abc123", "oat_abc123", "ak_abc123"])
async def test_opaque_machine_tokens_are_refused_as_not_a_session(token: str) -> None:
    assert await refusal(pem_verifier(), token) is AuthReason.NOT_A_SESSION_TOKEN


@pytest.mark.parametrize(
    "overrides",
    [{"exp": "9999999999"}, {"iat": True}, {"nbf": 1.5}, {"exp": 10**20}, {"iat": -1}],
    ids=["text-exp", "bool-iat", "float-nbf", "huge-exp", "negative-iat"],
)
async def test_time_claims_must_be_plain_unix_times(overrides: dict[str, Any]) -> None:
    token = sign_with_header(claims(**overrides))
    assert await refusal(pem_verifier(), token) in (
        AuthReason.MALFORMED_TOKEN,
        AuthReason.EXPIRED,  # PyJWT reads `True` as 1 (1970) before our type check
        AuthReason.NOT_YET_VALID,
    )


# --- cookies must name an authorized party ----------------------------------------------------


async def test_a_cookie_token_without_azp_is_refused_while_a_header_token_is_accepted() -> None:
    verifier = pem_verifier(authorized_parties=frozenset({APP}))
    token = sign_with_header(claims(azp=DROP))
    assert (await verifier.verify(token, carrier="header")).authorized_party is None
    with pytest.raises(AuthError) as refused:
        await verifier.verify(token, carrier="cookie")  # the same token, now from the cache
    assert refused.value.reason is AuthReason.WRONG_PARTY


async def test_a_cookie_token_for_an_authorized_party_is_accepted() -> None:
    verifier = pem_verifier(authorized_parties=frozenset({APP}))
    session = await verifier.verify(sign_with_header(claims()), carrier="cookie")
    assert session.authorized_party == APP


@pytest.mark.parametrize("azp", ["https://evil.example", DROP])
async def test_a_cookie_token_is_refused_when_no_authorized_parties_are_configured(
    azp: object,
) -> None:
    with pytest.raises(AuthError) as refused:
        await pem_verifier().verify(sign_with_header(claims(azp=azp)), carrier="cookie")
    assert refused.value.reason is AuthReason.WRONG_PARTY


# --- organization role and permissions --------------------------------------------------------


async def test_v2_permissions_are_decoded_from_fea_per_and_fpm() -> None:
    """Clerk's documented example: `fea` o:dashboard,o:teams, `per` manage,read, `fpm` 3,2."""
    token = sign_with_header(
        claims(
            o={"id": "org_abc", "rol": "member", "per": "manage,read", "fpm": "3,2"},
            fea="o:dashboard,o:teams,u:chat",
        )
    )
    session = await pem_verifier().verify(token)
    assert session.org_role == "org:member"
    assert session.org_permissions == {
        "org:dashboard:manage",
        "org:dashboard:read",
        "org:teams:read",
    }


async def test_the_dev_issuers_organization_claims_decode_to_the_same_permissions() -> None:
    wanted = ["org:billing:manage", "org:teams:read", "org:billing:read"]
    token = sign_with_header(
        claims(**organization_claims("org_abc", role="org:member", permissions=wanted))
    )
    session = await pem_verifier().verify(token)
    assert (session.org_role, session.org_permissions) == ("org:member", frozenset(wanted))


async def test_v1_permissions_are_read_from_org_permissions() -> None:
    token = sign_with_header(
        claims(v=DROP, org_id="org_abc", org_role="org:member", org_permissions=["org:a:b"])
    )
    session = await pem_verifier().verify(token)
    assert (session.org_role, session.org_permissions) == ("org:member", frozenset({"org:a:b"}))


@pytest.mark.parametrize(
    "org_claims",
    [
        {"o": {"id": "org_abc", "per": 5, "fpm": "1"}, "fea": "o:a"},
        {"o": {"id": "org_abc", "per": "a", "fpm": "1"}, "fea": ["o:a"]},
        {"v": DROP, "org_id": "org_abc", "org_permissions": "org:a:b"},
        {"v": DROP, "org_id": "org_abc", "org_permissions": [1]},
    ],
    ids=["int-per", "list-fea", "text-v1-permissions", "int-v1-permission"],
)
async def test_ill_typed_permission_claims_are_malformed(org_claims: dict[str, Any]) -> None:
    token = sign_with_header(claims(**org_claims))
    assert await refusal(pem_verifier(), token) is AuthReason.MALFORMED_TOKEN


async def test_masks_that_are_not_numbers_grant_nothing() -> None:
    token = sign_with_header(
        claims(o={"id": "org_abc", "per": "manage", "fpm": "x,-1,1e3"}, fea="o:a,o:b,o:c")
    )
    assert (await pem_verifier().verify(token)).org_permissions == frozenset()


# --- who manages an organization's billing ----------------------------------------------------


async def org_session(role: str | None, permissions: list[str] | None = None) -> Session:
    org = organization_claims("org_abc", role=role or "", permissions=permissions or [])
    if role is None:
        org["o"].pop("rol")
    token = sign_with_header(claims(**org))
    return await pem_verifier(per_organization=True).verify(token)


async def test_by_default_only_admins_manage_an_organizations_billing() -> None:
    managers = BillingManagers()
    managers.check(await org_session("org:admin"))
    for role in ("org:member", "org:billing", None):
        with pytest.raises(AuthError) as refused:
            managers.check(await org_session(role))
        assert refused.value.reason is AuthReason.ORG_ROLE_REQUIRED


async def test_a_configured_permission_or_role_makes_a_member_a_manager() -> None:
    managers = BillingManagers(
        roles=frozenset({"org:billing"}), permissions=frozenset({"org:billing:manage"})
    )
    managers.check(await org_session("org:member", ["org:billing:manage"]))
    managers.check(await org_session("org:billing"))
    with pytest.raises(AuthError):
        managers.check(await org_session("org:admin", ["org:billing:read"]))


async def test_a_user_billed_as_themself_manages_their_own_billing() -> None:
    member = await pem_verifier(per_organization=False).verify(
        sign_with_header(claims(**organization_claims("org_abc", role="org:member")))
    )
    BillingManagers().check(member)
    BillingManagers().check(
        await pem_verifier(per_organization=True).verify(sign_with_header(claims()))
    )


@pytest.mark.parametrize(
    "options",
    [{"roles": frozenset()}, {"roles": frozenset({"admin"})}, {"permissions": frozenset({"x"})}],
    ids=["nobody", "unprefixed-role", "unprefixed-permission"],
)
def test_a_rule_that_names_nobody_or_unprefixed_names_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="org"):
        BillingManagers(**options)


def test_the_dev_issuer_refuses_a_permission_that_is_not_org_feature_name() -> None:
    with pytest.raises(ValueError, match="org:<feature>:<name>"):
        organization_claims("org_abc", permissions=["billing:manage"])
