"""What tests, the benchmarks and the history recorder share (import from here, never from a test
module):

- `waiting.eventually`: the one way to wait for something to hold.
- `temporal`: the time-skipping server and `workflow_worker`, a worker that ends its runs after it.
- `fakes`: fake activities that record every call by activity name, and stand-ins for journeys.
- `lead`, `customer`, `handoff`: starting and reading those journeys in workflow tests.
- `stack`, `e2e`, `webhooks`: the whole engine for e2e tests, a lead made by a form (and made an
  MQL), the sandbox's calls, and platform webhooks signed as each platform signs them.
"""
