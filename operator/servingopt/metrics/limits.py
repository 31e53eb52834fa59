"""Default bounds on what a Prometheus may cost the operator (``servingopt run`` flags).

Constants only, so that the CLI can show them without importing the metrics stack."""

# Larger answers are abandoned (--prometheus-max-response-bytes). servingopt's own
# answers are far smaller: one series per instant query, and a 49 h history at a 60 s
# step is about 3,000 points (under 100 KiB).
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# One request (--prometheus-timeout).
DEFAULT_TIMEOUT_SECONDS = 5.0
# One sample: all its queries, retries included (--prometheus-deadline).
DEFAULT_DEADLINE_SECONDS = 15.0
# Samples older than this are not acted on: three scrapes at the usual 60 s interval
# (--metrics-max-age).
DEFAULT_MAX_AGE_SECONDS = 180.0
