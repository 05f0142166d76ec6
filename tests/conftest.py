"""Fixtures every test folder may ask for."""

from tests.sshd import server  # noqa: F401 - the SSH test server's parameters (skips, or fails in CI, without one)
