"""Guided rotations as data: for each credential kind, the ordered steps a person walks.

A step is one of four kinds: *confirm* (a checklist the person ticks), *generate* (the new
version, shown once), *check* (the portal verifies something itself: activity, a test event,
a signed challenge) or *revoke* (the old version stops working). The text is what the person
reads on that step's page. Nothing here changes state; ``lifecycle/rotations.py`` walks these
steps and the pages render them.

Exposure mode puts "revoke the exposed version now" first and drops the routine revoke at the
end (the old version is already gone by then); there is no overlap to plan either.
"""

from __future__ import annotations

from dataclasses import dataclass

CONFIRM, GENERATE, CHECK, REVOKE = "confirm", "generate", "check", "revoke"
ACTIVITY, TEST_EVENT, POSSESSION = "activity", "test_event", "possession"
ROUTINE, EXPOSURE = "routine", "exposure"
MAX_OVERLAP_DAYS = 7

PRIVATE_KEY_FILE = "new-key.pem"
PUBLIC_KEY_FILE = "new-key.pub.pem"
CHALLENGE_FILE = "challenge.txt"

# How to make a keypair Keyturn accepts, per algorithm; the public half goes into the portal.
KEYPAIR_COMMANDS = {
    "Ed25519": (f"openssl genpkey -algorithm ed25519 -out {PRIVATE_KEY_FILE}",),
    "EC P-256": (
        f"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {PRIVATE_KEY_FILE}",
    ),
    "RSA 3072": (
        f"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out {PRIVATE_KEY_FILE}",
    ),
}
EXPORT_PUBLIC = f"openssl pkey -in {PRIVATE_KEY_FILE} -pubout -out {PUBLIC_KEY_FILE}"


def sign_commands(key_algorithm: str, challenge: str) -> tuple[str, ...]:
    """The shell commands that sign ``challenge`` with the new private key and print base64.

    ``key_algorithm`` is a version's (``Ed25519``, ``EC-P256``, ``RSA-3072``...) or a key of
    KEYPAIR_COMMANDS. The challenge holds only base64url characters, so single quotes suffice.
    Ed25519 signs the message itself (``-rawin``); RSA and EC sign its SHA-256 (PKCS#1 v1.5
    and DER ECDSA, what ``openssl dgst -sign`` makes by default).
    """
    write = f"printf '%s' '{challenge}' > {CHALLENGE_FILE}"
    if key_algorithm.startswith("Ed25519"):
        sign = f"openssl pkeyutl -sign -inkey {PRIVATE_KEY_FILE} -rawin -in {CHALLENGE_FILE}"
    else:
        sign = f"openssl dgst -sha256 -sign {PRIVATE_KEY_FILE} {CHALLENGE_FILE}"
    return (write, f"{sign} | openssl base64 -A")


def keypair_commands(algorithm: str, challenge: str) -> tuple[str, ...]:
    """Everything from nothing to a printed signature: make the key, export, sign."""
    return (*KEYPAIR_COMMANDS[algorithm], EXPORT_PUBLIC, *sign_commands(algorithm, challenge))


@dataclass(frozen=True)
class Step:
    key: str
    kind: str
    title: str
    instructions: tuple[str, ...]
    checklist: tuple[str, ...] = ()
    check: str = ""  # for CHECK steps: ACTIVITY, TEST_EVENT or POSSESSION
    plan: bool = False  # the step that sets the overlap
    code: tuple[str, ...] = ()  # a snippet shown under the instructions


@dataclass(frozen=True)
class Playbook:
    kind: str
    title: str
    summary: str
    routine: tuple[Step, ...]

    def steps(self, mode: str) -> tuple[Step, ...]:
        """The steps in the order a rotation of this ``mode`` walks them."""
        if mode == ROUTINE:
            return self.routine
        rest = self.routine
        if rest[-1].kind == REVOKE:
            rest = rest[:-1]
        return (EXPOSED_FIRST, *rest)


EXPOSED_FIRST = Step(
    "revoke_exposed",
    REVOKE,
    "Revoke the exposed version",
    (
        "The exposed version stopped working the moment this rotation started, for good: an "
        "exposed secret can never be reactivated. Anything that still uses it fails until it "
        "gets the new one, which is what the next steps are for.",
    ),
)

_PLAN_TEXT = (
    "Decide how long the current version keeps working after the new one is made: the "
    "overlap, from 0 to 7 days. Long enough to deploy everywhere; no longer. With 0 the current "
    "version stops at once when the new one is made.",
)

_ACTIVITY_TEXT = (
    "Keyturn shows when each version was last used since the previous step. Wait until the new "
    "version shows use and the old one has gone quiet; the figures refresh on their own.",
    "If the new version shows no use yet, its deployment has not reached production, or nothing "
    "has called since. Continue only if you know why.",
)

API_KEY = Playbook(
    "api_key",
    "API key",
    "Plan, make the new key, deploy it beside the old one, watch the traffic move, revoke.",
    (
        Step(
            "plan",
            CONFIRM,
            "Plan the rotation",
            (
                *_PLAN_TEXT,
                "The new key keeps this credential's name and scopes, and expires after its "
                "lifetime; change those on the credential page first if they should differ.",
            ),
            checklist=(
                "I know every service and environment that uses this key.",
                "Someone who can deploy each of them is available during the overlap.",
            ),
            plan=True,
        ),
        Step(
            "generate",
            GENERATE,
            "Make the new key",
            (
                "Keyturn makes the new key and shows it once, on the next page only. Copy it "
                "straight into your secret manager; after that page only its last four "
                "characters are ever shown.",
            ),
        ),
        Step(
            "deploy",
            CONFIRM,
            "Deploy the new key beside the old one",
            (
                "Both keys work during the overlap. Store the new key as the active one and move "
                "the old one to a fallback slot, then have every service try the active key "
                "first and fall back to the old key only if the active one is missing or "
                "refused. A service then switches the moment it is deployed, and a mistake in "
                "the new key does not take it down.",
            ),
            checklist=(
                "The new key is stored as the active key in every environment.",
                "The old key is kept only as the fallback.",
                "Every service using this key has been redeployed or has reloaded its secrets.",
            ),
            code=(
                "# one way to write the fallback, in Python",
                'API_KEY = os.environ.get("ACTIVE_API_KEY") or os.environ["OLD_API_KEY"]',
            ),
        ),
        Step("activity", CHECK, "Check that traffic moved", _ACTIVITY_TEXT, check=ACTIVITY),
        Step(
            "revoke_old",
            REVOKE,
            "Revoke the old key",
            (
                "Revoking stops the old key at once, in every process. Keep an eye on your "
                "error logs afterwards: for a short window the revoke can still be undone from "
                "the credential page, but it is better not to need that.",
                "Then remove the old key from the fallback slot and wherever else it was kept.",
            ),
        ),
    ),
)

CLIENT_SECRET = Playbook(
    "client_secret",
    "App client secret",
    "Make the new secret, accept both on webhooks, switch the token exchange, re-issue "
    "tokens, revoke.",
    (
        Step(
            "plan",
            CONFIRM,
            "Plan the rotation",
            _PLAN_TEXT,
            checklist=("I know where the app keeps its client secret, in every environment.",),
            plan=True,
        ),
        Step(
            "generate",
            GENERATE,
            "Make the new client secret",
            (
                "Keyturn makes the new client secret and shows it once, on the next page only. "
                "Store it in your secret manager right away.",
            ),
        ),
        Step(
            "receivers",
            CONFIRM,
            "Accept webhooks signed with either secret",
            (
                "Until the old secret is revoked, webhooks may arrive signed with the old secret "
                "or the new one. Make your webhook receivers accept a signature made with "
                "either. Keep this setting apart from the token exchange below: a receiver that "
                "checks only the new secret rejects genuine webhooks during the switch.",
            ),
            checklist=("Every webhook receiver accepts signatures made with either secret.",),
        ),
        Step(
            "token_exchange",
            CONFIRM,
            "Switch the token exchange to the new secret",
            (
                "Tokens requested with the new secret are the ones to keep. Point the code that "
                "exchanges credentials for access tokens at the new secret only.",
            ),
            checklist=("The token exchange uses only the new client secret.",),
        ),
        Step("activity", CHECK, "Check that traffic moved", _ACTIVITY_TEXT, check=ACTIVITY),
        Step(
            "tokens",
            CONFIRM,
            "Re-issue the tokens made with the old secret",
            (
                "Access tokens obtained with the old secret stop being useful once it is "
                "revoked. Request fresh ones with the new secret (with a refresh token where "
                "your integration has them) for every store or user the app acts for.",
            ),
            checklist=("Every access token the app relies on was obtained with the new secret.",),
        ),
        Step(
            "revoke_old",
            REVOKE,
            "Revoke the old client secret",
            (
                "Revoking stops the old secret at once. Afterwards your webhook receivers can "
                "stop accepting signatures made with it.",
            ),
        ),
    ),
)

ENDPOINT_SECRET = Playbook(
    "endpoint_secret",
    "Webhook endpoint signing secret",
    "Agree with the receiver, rotate, send a signed test event, read its receipt.",
    (
        Step(
            "plan",
            CONFIRM,
            "Agree the change with the receiver",
            (
                "The team that runs the receiving endpoint must be ready to put the new secret "
                "in its configuration as soon as it is made. During the overlap every event is "
                "signed with both secrets, so a receiver still holding the old one keeps "
                "working until the overlap ends.",
                *_PLAN_TEXT,
            ),
            checklist=("The receiver's owner is ready to update their secret now.",),
            plan=True,
        ),
        Step(
            "generate",
            GENERATE,
            "Rotate the signing secret",
            (
                "Keyturn makes the new signing secret and shows it once, on the next page only. "
                "Hand it to the receiver through their secret manager, never through chat, "
                "email or a ticket. The old secret is never shown again.",
            ),
        ),
        Step(
            "test_event",
            CHECK,
            "Send a test event",
            (
                "Keyturn sends a synthetic, signed test.ping event to the endpoint now and shows "
                "the receipt: status, time taken and which secret versions signed it. The step "
                "passes only when the receiver answers with a 2xx status, which means it "
                "checked the signature and accepted it.",
                "If it fails, fix the receiver's configuration and send another.",
            ),
            check=TEST_EVENT,
        ),
        Step(
            "done",
            CONFIRM,
            "Finish",
            (
                "The receiver authenticated the test event. The old secret keeps signing until "
                "the overlap ends and then stops on its own.",
                "If you need help from anyone, share the receipt's outcome only: never the new "
                "secret, the old one, a signature header or a raw event body.",
            ),
            checklist=("The receiver's owner confirmed they now hold only the new secret.",),
        ),
    ),
)

SERVICE_ACCOUNT_KEY = Playbook(
    "service_account_key",
    "Service-account keypair",
    "Register a new public key, prove you hold its private key, deploy it, deactivate the old.",
    (
        Step(
            "plan",
            CONFIRM,
            "Plan the rotation",
            _PLAN_TEXT,
            checklist=("I can deploy a new private key to every system using this account.",),
            plan=True,
        ),
        Step(
            "generate",
            GENERATE,
            "Register the new public key",
            (
                "Make a new keypair on a machine you trust, with one of the commands below, "
                "and paste the PUBLIC key only. The private key never leaves your side and "
                "never goes into Keyturn; a pasted private key is refused.",
            ),
            code=(
                "# choose one line to make the private key",
                *(commands[0] for commands in KEYPAIR_COMMANDS.values()),
                "# then export its public half and paste that file's contents here",
                EXPORT_PUBLIC,
                f"cat {PUBLIC_KEY_FILE}",
            ),
        ),
        Step(
            "possession",
            CHECK,
            "Prove you hold the private key",
            (
                "Sign the challenge below with the new private key, in the folder where the "
                "key is, and paste the base64 the last command prints. This proves the public "
                "key you registered belongs to a private key you actually have.",
            ),
            check=POSSESSION,
        ),
        Step(
            "deploy",
            CHECK,
            "Deploy the new key and check its use",
            (
                "Deploy the new private key to every system using this service account, then "
                "watch the activity below: the new key should show use, the old one go quiet.",
                *_ACTIVITY_TEXT[1:],
            ),
            check=ACTIVITY,
        ),
        Step(
            "revoke_old",
            REVOKE,
            "Deactivate the old key",
            (
                "Deactivating stops the old key at once. For a short window it can still be "
                "reactivated from the credential page if something turns out to need it.",
            ),
        ),
    ),
)

PLAYBOOKS = {
    playbook.kind: playbook
    for playbook in (API_KEY, CLIENT_SECRET, ENDPOINT_SECRET, SERVICE_ACCOUNT_KEY)
}


def for_kind(kind: str) -> Playbook:
    return PLAYBOOKS[kind]
