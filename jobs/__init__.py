"""One module per job: a plain async function that takes a JobContext and returns a JobResult."""
