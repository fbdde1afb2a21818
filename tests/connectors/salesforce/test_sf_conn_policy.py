"""The Salesforce response table: what each answer makes the connector do."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connectors.runtime import Action
from connectors.salesforce import policy


def _classify(exc: BaseException, headers: dict[str, str] | None = None) -> Action | None:
    outcome = policy.table().classifier(policy.make_to_failure(lambda: headers or {}))(exc)
    return None if outcome is None else outcome.action


def _err(cls: type[SalesforceError], status: int, code: str) -> BaseException:
    # simple-salesforce passes the decoded JSON body as ``content`` (annotated bytes).
    return cls(
        "https://x/services/data/v59.0/query",
        status,
        "query",
        [{"errorCode": code, "message": "m"}],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (_err(SalesforceExpiredSession, 401, "INVALID_SESSION_ID"), Action.REFRESH_AUTH),
        (_err(SalesforceRefusedRequest, 403, "REQUEST_LIMIT_EXCEEDED"), Action.STOP_FOR_DAY),
        (_err(SalesforceRefusedRequest, 403, "INSUFFICIENT_ACCESS"), Action.FAIL),
        (_err(SalesforceGeneralError, 503, "SERVER_UNAVAILABLE"), Action.RETRY),
        (_err(SalesforceGeneralError, 500, "UNKNOWN_EXCEPTION"), Action.RETRY),
        (_err(SalesforceMalformedRequest, 400, "UNABLE_TO_LOCK_ROW"), Action.RETRY),
        (_err(SalesforceMalformedRequest, 400, "MALFORMED_QUERY"), Action.FAIL),
        (_err(SalesforceMalformedRequest, 400, "INVALID_FIELD"), Action.FAIL),
        (requests.ConnectionError("reset"), Action.RETRY),
        (requests.ReadTimeout("slow"), Action.RETRY),
    ],
)
def test_table(exc: BaseException, action: Action) -> None:
    assert _classify(exc) is action


def test_unknown_exceptions_are_bugs_not_retries() -> None:
    assert _classify(KeyError("x")) is None


def test_retry_after_is_honoured_when_sent() -> None:
    exc = _err(SalesforceGeneralError, 503, "SERVER_UNAVAILABLE")
    outcome = policy.table().classifier(policy.make_to_failure(lambda: {"Retry-After": "7"}))(exc)
    assert outcome is not None and outcome.retry_after == 7.0


def test_reason_carries_the_error_code_not_the_url() -> None:
    exc = SalesforceRefusedRequest(
        "https://x/services/data/v59.0/query?q=SELECT+Email",
        403,
        "query",
        [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],  # type: ignore[arg-type]
    )
    outcome = policy.table().classifier(policy.make_to_failure(dict))(exc)
    assert outcome is not None
    assert "REQUEST_LIMIT_EXCEEDED" in outcome.reason
    assert "https://" not in outcome.reason
