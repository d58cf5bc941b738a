"""Free-text narrations of the synthetic wearer's actions: what a person describing the video
would say, several paraphrases per action, so the language objective learns the action and not
one fixed sentence.

Each labelled segment of a synthesised session gets one of its action's narrations (seeded), in
labels.csv's ``text`` column. These sentences are the only ones the training data ever holds;
``bench/language.py`` scores zero-shot recognition with other paraphrases, none of which is here.
"""

from __future__ import annotations

import numpy as np

#: action label → paraphrases used in synthesised sessions (one entry per action of
#: :data:`evimae_stream.synthetic.motions.ACTIONS`)
NARRATIONS: dict[str, tuple[str, ...]] = {
    "idle": (
        "standing still with arms down",
        "a person waiting without moving",
        "resting in place between exercises",
        "standing around doing nothing",
    ),
    "walking": (
        "walking across the room",
        "a person strolls forward at an easy pace",
        "taking steps at a normal walking speed",
        "walking ahead with arms swinging",
    ),
    "jogging": (
        "jogging at a steady pace",
        "a person running slowly forward",
        "going for a light run",
        "running on the spot with quick strides",
    ),
    "waving": (
        "waving a hand in greeting",
        "a person waves hello to someone",
        "raising an arm and waving it side to side",
        "waving goodbye with one hand",
    ),
    "stirring": (
        "stirring a pot with a spoon",
        "mixing something in a bowl",
        "a person stirs the soup on the stove",
        "stirring food in a pan",
    ),
    "chopping": (
        "chopping vegetables on a board",
        "cutting food with a knife",
        "a person slices carrots on the cutting board",
        "dicing an onion with a kitchen knife",
    ),
    "push-ups": (
        "doing push-ups on the floor",
        "a person presses the body up and down from the ground",
        "push-up exercise with both hands on the floor",
        "lowering the chest to the floor and pushing back up",
    ),
    "jumping-jacks": (
        "doing jumping jacks",
        "jumping while spreading arms and legs",
        "a person does star jumps",
        "jumping with arms clapping overhead",
    ),
    "reaching": (
        "reaching up to a high shelf",
        "stretching an arm out to grab something",
        "a person reaches for an object on the wall",
        "extending the arm to pick something up",
    ),
}


def narrate(script: list[tuple[float, float, str]], seed: int) -> list[str]:
    """One narration per script segment, drawn with ``seed`` (same script and seed → same
    sentences), never the same sentence twice in a row for one action."""
    rng = np.random.default_rng([seed, 0x6E617272])
    last: dict[str, int] = {}
    out = []
    for _, _, label in script:
        options = NARRATIONS[label]
        k = int(rng.integers(len(options)))
        if len(options) > 1 and last.get(label) == k:
            k = (k + 1) % len(options)
        last[label] = k
        out.append(options[k])
    return out
