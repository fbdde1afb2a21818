"""leadsync's scoring core: model files in, scores and reasons out.

Pure: no file, network or clock access. Callers pass text, records and ``as_of``.
"""
