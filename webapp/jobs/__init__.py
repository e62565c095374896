"""The worker side: everything ``mailroom worker`` runs, and the only code that talks to a mail server.

One module per job, each with ``start(...) -> rq.job.Job`` (validate, enqueue, no URLs: the web
turns the job into its answer) and the job function itself, which takes ids only:

    connection_test  test a mailbox, or a corporate server with credentials waiting in Redis
    discovery        find the server settings of an email address
    folders          list a mailbox's folders
    sync, sync_store sync a mailbox's folders (connectors.sync with the SQL store); POP3 in pop3
    automation       filters and out-of-office replies on new mail (filter_actions, out_of_office)
    send             send an outgoing message and keep its Sent copy; the sweeper of lost sends
    bodies           fetch a message's whole body on demand
    oauth_refresh    fresh OAuth2 access tokens, one worker at a time
    session          a stored mailbox turned into a logged-in connection
    outcome          the one writer of a mailbox's state, errors and the log line of a check
    abandoned        jobs of a killed worker, failed and recorded like any other failure
    schedule         the periodic jobs ``mailroom cron`` registers

The names below are the dotted paths jobs were enqueued under before this package existed
(RQ stores the path; a cron job may still wait in Redis): they keep working.
"""

from .connection_test import test_account as test_account_connection  # queued jobs name this path
from .connection_test import test_service as test_service_connection  # queued jobs name this path
from .schedule import heartbeat  # cron's queued jobs name this path

__all__ = ["heartbeat", "test_account_connection", "test_service_connection"]
