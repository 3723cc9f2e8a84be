"""Which workflows and activities run on which task queue, and the process that runs them."""
