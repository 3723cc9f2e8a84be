"""The embedded stack for `dev` and the tests: Temporal dev server, PostgreSQL, sandbox, worker, API."""
