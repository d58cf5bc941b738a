"""A model's predictions over a whole session as label segments: what the annotate mode
prefills for the user to correct (``--gui --replay SESSION --annotate --model DIR``)."""

from __future__ import annotations

from evimae_stream.recognised import action_runs
from evimae_stream.types import Segment


def predicted_segments(composer, session) -> list[Segment]:
    """Replay ``session`` at max speed through ``composer``'s model and merge consecutive
    windows of one label into a segment (from one stride before the first window's end to the
    last one's, as the ``recognised`` timeline does); windows without a prediction are gaps."""
    result = composer.replay(session, None)
    runs = action_runs(result.outputs.predictions, composer.config.stride_s)
    return [Segment(r.start_s, r.end_s, r.label) for r in runs if r.label is not None]
