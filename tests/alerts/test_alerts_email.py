"""E-mail delivery against a real SMTP server (aiosmtpd) that requires STARTTLS."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from alert_helpers import alerts, event, plan_and_store

from scheduler.alerts.deliver import deliver
from scheduler.alerts.render import message_id
from scheduler.alerts.senders import EmailSender


def _config(server, **kw):
    item = {
        "type": "email",
        "smtp": {
            "host": server.host,
            "port": server.port,
            "username": "rep-bot",
            "password": "s3cret-smtp-pass",
            "timeout_seconds": 5,
        },
        "from": "leadsync@acme.test",
        "to": "owner",
    }
    item.update(kw)
    return alerts(item)


def _senders(config, server):
    from connectors.runtime import Redactor

    dest = config.destinations[0]
    return {dest.id: EmailSender(dest, redactor=Redactor(), ssl_context=server.client_context)}


def test_owner_email_over_starttls_with_the_ledger_key_as_message_id(
    store, clock, smtp_server
) -> None:
    config = _config(smtp_server)
    plan_and_store(store, config, [event(1)], clock.now())
    report = deliver(
        store, None, config=config, now=clock.now, sleep=clock.sleep,
        senders=_senders(config, smtp_server),
    )  # fmt: skip
    assert report.sent == 1, report.errors
    [env] = smtp_server.mailbox.envelopes
    assert smtp_server.mailbox.starttls == [True]
    assert smtp_server.mailbox.logins == [("rep-bot", "s3cret-smtp-pass")]
    assert env.rcpt_tos == ["ana@example.com"]
    assert env.mail_from == "leadsync@acme.test"
    msg = message_from_bytes(env.original_content, policy=default)
    assert msg["Message-ID"] == "<fit-c1-c1-alert-email.{}@leadsync>".format(
        message_id("fit:c1:c1:alert:email").split(".")[-1].split("@")[0]
    )
    assert msg["Subject"] == "Lee Number1: fit score 81 (hot, crossed the threshold)"
    text = msg.get_content()
    assert "Owner: Ana Reyes" in text
    assert "- visited pricing: +20" in text
    assert "Open in the CRM: https://crm.test/contact/c1" in text
    [entry] = store.ledger_for("c1")
    assert (entry.status, entry.result_id) == ("done", msg["Message-ID"])


def test_fixed_addresses(store, clock, smtp_server) -> None:
    config = _config(smtp_server, to=["sales@acme.test", "lead@acme.test"])
    plan_and_store(store, config, [event(2, owner=None)], clock.now())
    deliver(
        store,
        None,
        config=config,
        now=clock.now,
        sleep=clock.sleep,
        senders=_senders(config, smtp_server),
    )
    [env] = smtp_server.mailbox.envelopes
    assert env.rcpt_tos == ["sales@acme.test", "lead@acme.test"]


def test_wrong_password_is_given_up_and_never_shown(store, clock, smtp_server) -> None:
    config = _config(smtp_server)
    smtp = config.destinations[0].smtp.model_copy(update={"password": "wrong-pass-XYZ"})
    dest = config.destinations[0].model_copy(update={"smtp": smtp})
    from connectors.runtime import Redactor
    from scheduler.alerts.config import AlertsConfig

    config = AlertsConfig(destinations=(dest,))
    plan_and_store(store, config, [event(1)], clock.now())
    sender = EmailSender(dest, redactor=Redactor(), ssl_context=smtp_server.client_context)
    assert "wrong-pass-XYZ" not in repr(sender)
    report = deliver(
        store, None, config=config, now=clock.now, sleep=clock.sleep, senders={dest.id: sender}
    )
    assert report.gave_up == 1
    [entry] = store.ledger_for("c1")
    assert "login refused (535)" in (entry.error or "")
    assert "wrong-pass-XYZ" not in (entry.error or "")
    assert smtp_server.mailbox.envelopes == []


def test_a_server_the_client_does_not_trust_is_not_sent_to(store, clock, smtp_server) -> None:
    config = _config(smtp_server)
    plan_and_store(store, config, [event(1)], clock.now())
    report = deliver(
        store, None, config=config, now=clock.now, sleep=clock.sleep
    )  # system CAs only
    assert report.failed == 1
    assert "SSLCertVerificationError" in store.ledger_for("c1")[0].error
    assert smtp_server.mailbox.envelopes == []


def test_message_id_keeps_plain_keys_and_makes_others_safe() -> None:
    assert message_id("fit.c1.c1") == "<fit.c1.c1@leadsync>"
    odd = message_id("fit:c1:e:open@2026-03-01T10:00:00+00:00:alert:mail")
    assert odd.startswith("<fit-c1-e-open-2026-03-01T10-00-00+00-00-alert-mail.")
    assert odd.count("@") == 1
