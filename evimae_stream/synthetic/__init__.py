"""The synthetic wearer: a simulated person whose IMUs and head camera agree.

Used by the demo, the tests, training and live synthetic sources. See
:class:`~evimae_stream.synthetic.wearer.SyntheticWearer` and
:func:`~evimae_stream.synthetic.session.generate_session`.
"""

from evimae_stream.synthetic.config import DEFAULT_ACTIONS, WearerConfig
from evimae_stream.synthetic.kinematics import G0
from evimae_stream.synthetic.motions import ACTIONS, IDLE
from evimae_stream.synthetic.render import SKIN_RGB
from evimae_stream.synthetic.session import SessionSummary, generate_session
from evimae_stream.synthetic.wearer import FrameTimes, ImuSamples, SyntheticWearer

__all__ = [
    "ACTIONS",
    "DEFAULT_ACTIONS",
    "G0",
    "IDLE",
    "SKIN_RGB",
    "FrameTimes",
    "ImuSamples",
    "SessionSummary",
    "SyntheticWearer",
    "WearerConfig",
    "generate_session",
]
