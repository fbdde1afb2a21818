"""The sync: state store, write-back, scheduling and the ``leadsync`` command line."""
