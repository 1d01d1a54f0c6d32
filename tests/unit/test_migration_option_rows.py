"""A job's options as the job page lists them: the form's words, only what applies to its mode."""

from migrations_app.forms import option_rows
from migrations_app.services import OPTION_DEFAULTS


def test_live_move_lists_live_options_in_the_forms_words():
    rows = dict(option_rows("live", {**OPTION_DEFAULTS, "bandwidth_mibps": 0, "compressed": True}))
    assert rows["Bandwidth cap (MiB/s)"] == "unlimited"
    assert rows["Compress memory pages"] == "yes"
    assert rows["Max downtime (ms)"] == "QEMU default (300 ms)"
    assert "When the timeout hits" not in rows  # no completion timeout, so no action
    assert "Shutdown timeout (s)" not in rows and "shut the guest down gracefully first" not in rows


def test_offline_move_lists_offline_options_and_the_timeout_only_with_a_shutdown():
    rows = dict(option_rows("offline", {**OPTION_DEFAULTS, "shutdown_first": True, "shutdown_timeout_s": 30}))
    assert rows["shut the guest down gracefully first"] == "yes"
    assert rows["Shutdown timeout (s)"] == "30"
    assert "Bandwidth cap (MiB/s)" not in rows
    assert "Shutdown timeout (s)" not in dict(option_rows("offline", OPTION_DEFAULTS))


def test_timeout_action_is_worded_when_a_timeout_is_set():
    rows = dict(option_rows("live", {**OPTION_DEFAULTS, "completion_timeout_s": 60, "timeout_action": "abort"}))
    assert rows["Completion timeout (s)"] == "60"
    assert rows["When the timeout hits"] == "Abort the migration"
