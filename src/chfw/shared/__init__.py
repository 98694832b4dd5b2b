"""What both products need and neither owns: settings, TLS, retry policy, bearer tokens, body
limits, the guarded HTTP server, logs, metrics, SQL plumbing (:mod:`chfw.shared.db`) and the
dashboards' common parts (:mod:`chfw.shared.web`). Imports neither product."""
