"""Language-aligned models (IMU2CLIP on EVI-MAE): the frozen text tower (``text``), the
``language`` section of an artifact (``meta``), open-vocabulary scoring of windows
(``vocabulary``, ``scorer``) and search of recordings by text or by example (``search``).
Everything that needs the text encoder imports it lazily (the ``[text]`` extra)."""
