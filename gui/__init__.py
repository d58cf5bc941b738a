"""The Qt monitor of evimae-stream: video, IMU traces, predictions, timeline, sensor health.

- :func:`gui.app.run_gui` ``(source, screenshot=None, duration=None) -> int``: show the window
  over a :class:`gui.protocol.MonitorSource` (``evimae-stream --gui`` and ``python -m gui``).
- :class:`gui.local_source.LocalSource`: the source over a StreamBuffer, its drivers, a pipeline
  worker and the runtime's predictions (it is a runtime prediction sink: ``emit``).
- :mod:`gui.runtime_source`: the runtime's pipeline, built by the runtime's composer, behind a
  LocalSource (tee sinks to a display buffer, recording through the gates); :mod:`gui.demo`:
  synthetic rig and replay.

The core never imports this package; it imports the core and the drivers.
"""
