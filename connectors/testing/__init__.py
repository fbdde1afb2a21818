"""A conformance suite for leadsync connectors, for their authors to run with pytest.

``Harness`` is what an author writes (a connector on a fake backend that can fail on
cue); ``ConnectorSuite`` is the set of tests to subclass. docs/connectors.md, "Write
your own connector", walks through both. Importing this package needs pytest.
"""

from connectors.testing.harness import Fault, Harness, ObjectKind
from connectors.testing.suite import SHARED_STAMP, ConnectorSuite

__all__ = ["SHARED_STAMP", "ConnectorSuite", "Fault", "Harness", "ObjectKind"]
