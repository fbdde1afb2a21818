"""``leadsync alerts test`` and the demo's alerts, end to end on loopback."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from scheduler import cli_alerts
from scheduler.alerts.catcher import Reply
from scheduler.alerts.demo import demo_alerts
from scheduler.state import LedgerEntry, ModelState, StoredContact


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def version() -> None:  # a second command, as in the real app
        pass

    cli_alerts.register(app)
    return app


def test_alerts_test_sends_a_sample_to_each_destination(tmp_path, catcher, monkeypatch) -> None:
    (tmp_path / "leadsync.yaml").write_text(
        # (the rest of the file is not this command's business: an unset token is fine)
        "crm: {type: hubspot, hubspot: {access_token: '${UNSET_TOKEN}'}}\n"
        "alerts:\n  - {type: slack, url: '${SLACK_URL}'}\n  - {type: teams, url: '${TEAMS_URL}'}\n"
    )
    monkeypatch.delenv("UNSET_TOKEN", raising=False)
    monkeypatch.setenv("SLACK_URL", catcher.url("/slack/T1/B1/SLACKTOKEN42"))
    monkeypatch.setenv("TEAMS_URL", catcher.url("/teams?sig=TEAMSIG42"))
    catcher.script = [Reply(200), Reply(202, "")]
    result = CliRunner().invoke(
        _app(), ["alerts", "test", "--config", str(tmp_path / "leadsync.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["slack: sent", "teams: sent"]
    slack, teams = catcher.bodies()
    assert slack["text"].startswith("Sample Lead (leadsync alerts test): sample score 87.5")
    assert teams["attachments"][0]["content"]["type"] == "AdaptiveCard"


def test_alerts_test_says_which_destination_failed_without_its_url(
    tmp_path, catcher, monkeypatch
) -> None:
    (tmp_path / "leadsync.yaml").write_text("alerts:\n  - {type: slack, url: '${SLACK_URL}'}\n")
    monkeypatch.setenv("SLACK_URL", catcher.url("/slack/T1/B1/SLACKTOKEN42"))
    catcher.default = Reply(403, "invalid_token")
    result = CliRunner().invoke(
        _app(), ["alerts", "test", "--config", str(tmp_path / "leadsync.yaml")]
    )
    assert result.exit_code == 1
    assert "slack: not sent: slack slack: HTTP 403 invalid_token" in result.output
    assert "SLACKTOKEN42" not in result.output


def test_alerts_test_config_problem_is_one_line(tmp_path) -> None:
    (tmp_path / "leadsync.yaml").write_text("alerts:\n  - {type: slak, url: x}\n")
    result = CliRunner().invoke(
        _app(), ["alerts", "test", "--config", str(tmp_path / "leadsync.yaml")]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"{tmp_path / 'leadsync.yaml'}:2: alerts[0]: Input tag 'slak' found using 'type' does not match "
        "any of the expected tags: 'slack', 'teams', 'email'"
    ]


def test_demo_shows_the_alerts_the_run_would_send(store) -> None:
    with store.tx() as conn:
        store.upsert_contacts(
            conn,
            [
                StoredContact(
                    "101",
                    "contact",
                    converted=False,
                    fields={"first_name": "Ada", "last_name": "King"},
                )
            ],
        )
        store.put_model_states(
            conn, [ModelState("101", "fit", 91.0, "hot", armed=False, crossings=1, last_event=None)]
        )
        store.add_intents(
            conn,
            [LedgerEntry("fit:101:c1:deal", "fit:101:c1", 1, "101", "fit", "deal", "intent",
                         {"owner_id": "o1"}, None, None, 0)],
            "run1",
        )  # fmt: skip
    lines: list[str] = []
    n = demo_alerts(store, echo=lines.append, link=lambda cid, kind: f"https://crm.test/{cid}")
    assert n == 1
    assert lines == [
        "alerts: 1 Slack message(s) a local webhook catcher received:",
        "  Ada King: fit score 91 (hot, crossed the threshold)",
    ]
    assert [e.kind for e in store.ledger_for("101")] == ["deal"]  # the demo's ledger untouched
