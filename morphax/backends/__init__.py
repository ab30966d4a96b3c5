"""Where a search's trials run: `mx.backends.Local()` (in this process, one at
a time) and the `Backend` protocol that other backends (Ray) implement."""

from ._base import Backend as Backend
from ._base import Evaluate as Evaluate
from ._base import settle as settle
from ._local import Local as Local
from ._ray import Ray as Ray
