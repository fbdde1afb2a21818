"""CRM connectors, their shared protocol and registry, and the sandbox CRMs."""
