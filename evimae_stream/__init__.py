"""evimae-stream: real-time egocentric action recognition with EVI-MAE."""

__version__ = "0.1.0"
