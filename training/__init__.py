"""training package of evimae-stream."""
