"""drivers package of evimae-stream."""
