"""Open vocabularies: the actions a language-aligned model is asked to recognise, named at run time.

``--vocabulary "stirring a pot; chopping vegetables; walking"`` or ``--vocabulary FILE`` (one
entry a line; ``#`` starts a comment). An entry is a prompt (its own name), or
``NAME = prompt | another prompt`` (a name and the prompts averaged for it, CLIP's prompt
ensembling). A ``template: a person {}`` entry puts every prompt through that sentence; several
templates are averaged too. Each name's embedding is the renormalised mean of its prompts'
text embeddings (:class:`~evimae_stream.language.text.TextCache`); a window is scored by the
cosine of its embedding with each name's, softmaxed at the model's learned temperature
(:mod:`evimae_stream.language.scorer`).

For ``--eval`` a vocabulary's names are mapped to the session's labels
(:func:`map_to_labels`): a name equal to a label (case and spaces aside) is that label, any
other name goes to the label whose text is nearest to its prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError

TEMPLATE = "template:"


@dataclass(frozen=True)
class Vocabulary:
    """Names, their prompt texts, and their unit embeddings ``(K, dim)`` (float32)."""

    names: tuple[str, ...]
    prompts: tuple[tuple[str, ...], ...]
    templates: tuple[str, ...]
    source: str
    embeddings: np.ndarray

    def describe(self) -> dict:
        """What the JSONL start event records about it."""
        return {
            "source": self.source,
            "names": list(self.names),
            "prompts": {n: list(p) for n, p in zip(self.names, self.prompts, strict=True)},
            "templates": list(self.templates),
        }


@dataclass(frozen=True)
class VocabularySpec:
    """A parsed ``--vocabulary``: the entries before their texts are embedded."""

    names: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]
    templates: tuple[str, ...]
    source: str

    def texts(self) -> tuple[tuple[str, ...], ...]:
        """Every name's prompt sentences (each alternative through each template)."""
        if not self.templates:
            return self.alternatives
        return tuple(
            tuple(t.replace("{}", alt) for alt in alts for t in self.templates)
            for alts in self.alternatives
        )


def _entries(arg: str, where: str) -> tuple[list[str], str]:
    path = Path(arg)
    if "\n" not in arg and ";" not in arg and path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{where} {path}: cannot read the vocabulary file ({exc})") from None
        return text.splitlines(), str(path)
    return arg.replace("\n", ";").split(";"), arg


def parse_vocabulary(arg: str, where: str = "--vocabulary") -> VocabularySpec:
    """Parse a vocabulary string or file (see the module doc); InputError on a bad entry."""
    lines, source = _entries(arg, where)
    names: list[str] = []
    alternatives: list[tuple[str, ...]] = []
    templates: list[str] = []
    for raw in lines:
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        if item.lower().startswith(TEMPLATE):
            template = item[len(TEMPLATE) :].strip()
            if template.count("{}") != 1:
                raise InputError(
                    f"{where}: template {template!r} needs exactly one {{}} where the prompt goes"
                )
            templates.append(template)
            continue
        name, sep, rest = item.partition("=")
        alts = tuple(a.strip() for a in (rest if sep else name).split("|") if a.strip())
        name = name.strip() if sep else alts[0] if alts else ""
        if not name or not alts:
            raise InputError(f"{where}: entry {item!r} needs a name and a prompt (NAME = prompt)")
        if name in names:
            raise InputError(f"{where}: {name!r} is named twice; give each entry its own name")
        names.append(name)
        alternatives.append(alts)
    if len(names) < 2:
        raise InputError(
            f"{where}: needs at least two prompts to choose between "
            '(e.g. "stirring a pot; chopping vegetables")'
        )
    return VocabularySpec(tuple(names), tuple(alternatives), tuple(templates), source)


def mean_embeddings(groups: tuple[tuple[str, ...], ...], cache) -> np.ndarray:
    """``(K, dim)``: each group's renormalised mean text embedding."""
    flat = [t for g in groups for t in g]
    vecs = cache.encode(flat)
    out, k = [], 0
    for g in groups:
        v = vecs[k : k + len(g)].mean(axis=0)
        out.append(v / max(float(np.linalg.norm(v)), 1e-12))
        k += len(g)
    return np.stack(out).astype(np.float32)


def build_vocabulary(spec: VocabularySpec, cache) -> Vocabulary:
    """Embed a parsed vocabulary's prompts with the text encoder (through ``cache``)."""
    texts = spec.texts()
    return Vocabulary(spec.names, texts, spec.templates, spec.source, mean_embeddings(texts, cache))


def class_vocabulary(language, classes: list[str]) -> Vocabulary:
    """A model's own classes as a vocabulary, from the prompt embeddings its artifact carries
    (no text encoder needed)."""
    prompts = tuple(tuple(language.class_prompts[c]) for c in classes)
    return Vocabulary(tuple(classes), prompts, (), "model classes", language.embeddings)


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


def map_to_labels(vocab: Vocabulary, labels: list[str], cache) -> dict[str, str]:
    """Each vocabulary name → one of ``labels``: the label it names, else the label whose text
    embedding is nearest (cosine) to the name's."""
    exact = {_norm(lab): lab for lab in labels}
    out = {n: exact[_norm(n)] for n in vocab.names if _norm(n) in exact}
    rest = [k for k, n in enumerate(vocab.names) if n not in out]
    if rest:
        lab_vecs = cache.encode([lab.replace("_", " ") for lab in labels])
        sims = vocab.embeddings[rest] @ lab_vecs.T
        for k, row in zip(rest, sims, strict=True):
            out[vocab.names[k]] = labels[int(np.argmax(row))]
    return out


def relabel(predictions, names: tuple[str, ...], mapping: dict[str, str], classes: list[str]):
    """Copies of ``predictions`` over ``names`` restated over ``classes`` (``mapping``: name →
    class): a class's probability is the sum of its names', the label the most probable class."""
    from dataclasses import replace

    index = {c: i for i, c in enumerate(classes)}
    to_class = np.array([index[mapping[n]] for n in names])
    out = []
    for p in predictions:
        if p.label is None or p.probs is None:
            out.append(p)
            continue
        probs = np.zeros(len(classes))
        np.add.at(probs, to_class, p.probs)
        order = np.argsort(-probs, kind="stable")[: max(1, len(p.topk))]
        out.append(
            replace(
                p, probs=probs, label=classes[int(order[0])], score=float(probs[order[0]]),
                topk=[(classes[int(i)], float(probs[i])) for i in order],
            )
        )  # fmt: skip
    return out
