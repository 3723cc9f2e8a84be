"""Routes recorded events to their journeys: the outbox dispatcher, in its own process."""
