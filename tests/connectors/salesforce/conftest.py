"""Fixtures for the Salesforce connector tests (defined in ``sf_conn_support``)."""

from sf_conn_support import clock, org, tls_org

__all__ = ["clock", "org", "tls_org"]
