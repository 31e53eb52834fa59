"""The exit codes of every ``servingopt`` subcommand, one meaning each.

``docs/cli.md`` lists them for users; a unit test keeps that table and this module
the same.  A command returns one of these from its ``func``; :func:`servingopt.cli.main`
turns what a command raises into :data:`EXIT_INTERNAL_ERROR` or :data:`EXIT_INTERRUPTED`.
"""

from __future__ import annotations

EXIT_OK = 0
#: The command ran and what it checks or does failed: ``crds --check`` found stale
#: CRDs, the demo's loop did not close, a dev cluster would not start, stop or be
#: found, or one of its components is down.
EXIT_FAILED = 1
#: Invalid input: a file, a flag or standard input (one line on stderr naming it);
#: also a reader that closed stdout early.
EXIT_INVALID_INPUT = 2
#: A subcommand that is not implemented yet.
EXIT_NOT_IMPLEMENTED = 3
#: ``plan``: no configuration meets the SLO (the least-bad plan is still printed).
EXIT_INFEASIBLE = 4
#: ``run --leader-elect``: this replica lost its Lease and stopped at once.  Exited
#: from deep inside the operator (``os._exit``) by
#: :func:`servingopt.controller.leadership.exit_now`, which holds the same value.
EXIT_LEADERSHIP_LOST = 5
#: ``run``: no usable Kubernetes credentials (no kubeconfig and not in a cluster).
EXIT_NO_CREDENTIALS = 6
#: A bug in servingopt, not the input (sysexits.h ``EX_SOFTWARE``).
EXIT_INTERNAL_ERROR = 70
#: Interrupted (Ctrl-C): 128 + SIGINT, as shells report it.
EXIT_INTERRUPTED = 130
