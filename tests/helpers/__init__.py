"""What tests, the benchmarks and the history recorder share: fakes that record every call by
activity name, lead and journey set-ups, the time-skipping server and its workers, `eventually`."""
