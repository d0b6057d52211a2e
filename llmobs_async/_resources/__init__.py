"""Resource namespaces: ``client.projects``, ``.datasets``, ``.records``, ``.experiments``.

Each method reads as three steps: compile its route (which checks and
encodes the ids), build its body with the wire helpers, and hand both to the
transport with the loader of its answer. ``list`` methods send nothing: they
return an :class:`~llmobs_async.pagination.AsyncPaginator`.
"""

from .datasets import Datasets
from .events import Events
from .experiments import Experiments
from .projects import Projects
from .records import Records

__all__ = ["Datasets", "Events", "Experiments", "Projects", "Records"]
