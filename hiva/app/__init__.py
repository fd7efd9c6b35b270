"""hiva app: a local web page (Gradio) to look at faces, AU scores, maps and the corpus.

``hiva app --checkpoint RUN --corpus DIR`` serves it on 127.0.0.1; ``hiva.app.build(...)``
returns the ``gradio.Blocks`` for a Hugging Face Space's ``app.py``::

    from hiva.app import build
    build("my-lab/hiva-bp4d", "my-lab/au-descriptions").launch()

Gradio is the optional extra ``hiva[app]``. The tabs' work lives in plain modules the tests call
directly: ``detect`` (faces, maps, video tables), ``corpus`` (browse, search, stats) and
``model_info`` (the run's F1, curves, config); ``ui`` lays them out.
"""

from __future__ import annotations

from hiva.app.ui import build as _build
from hiva.app.ui import launch as _launch


def build(*args, **kwargs):
    """See ``hiva.app.ui.build``."""
    return _build(*args, **kwargs)


def launch(*args, **kwargs):
    """See ``hiva.app.ui.launch``."""
    return _launch(*args, **kwargs)
