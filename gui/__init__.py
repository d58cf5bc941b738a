"""gui package of evimae-stream."""
