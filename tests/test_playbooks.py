"""The playbooks as data: one per credential kind, in order, each step able to be walked."""

import pytest

from credentials import playbooks
from credentials.models import Kind

KINDS = [kind.value for kind in Kind]


def test_every_credential_kind_has_its_own_playbook():
    assert set(playbooks.PLAYBOOKS) == set(KINDS)
    summaries = [playbooks.for_kind(kind).summary for kind in KINDS]
    assert len(set(summaries)) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_routine_playbook_plans_first_generates_once_and_says_what_to_do_at_each_step(kind):
    steps = playbooks.for_kind(kind).steps(playbooks.ROUTINE)
    assert steps[0].plan and steps[0].kind == playbooks.CONFIRM
    assert [step.kind for step in steps].count(playbooks.GENERATE) == 1
    assert len({step.key for step in steps}) == len(steps)
    for step in steps:
        assert step.kind in (playbooks.CONFIRM, playbooks.GENERATE, playbooks.CHECK,
                             playbooks.REVOKE)  # fmt: skip
        assert step.instructions and all(len(text) > 40 for text in step.instructions)
        assert (step.kind == playbooks.CHECK) == bool(step.check)
    generate = next(i for i, step in enumerate(steps) if step.kind == playbooks.GENERATE)
    revokes = [i for i, step in enumerate(steps) if step.kind == playbooks.REVOKE]
    assert all(i > generate for i in revokes)  # never revoke before the new version exists


@pytest.mark.parametrize("kind", KINDS)
def test_exposure_mode_revokes_the_exposed_version_first_and_never_again_at_the_end(kind):
    routine = playbooks.for_kind(kind).steps(playbooks.ROUTINE)
    exposure = playbooks.for_kind(kind).steps(playbooks.EXPOSURE)
    assert exposure[0] is playbooks.EXPOSED_FIRST
    assert [s.kind for s in exposure[1:]].count(playbooks.REVOKE) == 0
    assert [s.key for s in exposure[1:]] == [s.key for s in routine if s.kind != playbooks.REVOKE]


def test_each_playbook_asks_for_the_check_its_kind_needs():
    checks = {kind: {s.check for s in playbooks.for_kind(kind).routine} - {""} for kind in KINDS}
    assert checks == {
        "api_key": {playbooks.ACTIVITY},
        "client_secret": {playbooks.ACTIVITY},
        "endpoint_secret": {playbooks.TEST_EVENT},
        "service_account_key": {playbooks.POSSESSION, playbooks.ACTIVITY},
    }


def test_the_api_key_playbook_teaches_active_key_first_old_key_as_fallback():
    deploy = next(s for s in playbooks.API_KEY.routine if s.key == "deploy")
    text = " ".join(deploy.instructions + deploy.code)
    assert "active key first" in text and "fall back to the old key" in text
    assert "ACTIVE_API_KEY" in text and "OLD_API_KEY" in text


@pytest.mark.parametrize("algorithm", ["Ed25519", "EC-P256", "EC-P384", "RSA-3072"])
def test_the_signing_commands_suit_the_registered_key_and_quote_the_challenge(algorithm):
    write, sign = playbooks.sign_commands(algorithm, "keyturn-challenge-abc")
    assert write == "printf '%s' 'keyturn-challenge-abc' > challenge.txt"
    assert ("-rawin" in sign) == (algorithm == "Ed25519")
    assert sign.endswith("| openssl base64 -A")
