"""The search loop, trials and the study store."""

from ._remote import Outcome as Outcome
from ._remote import RemoteSink as RemoteSink
from ._remote import outcome as outcome
from ._remote import remote_trial as remote_trial
from ._remote import tell_outcome as tell_outcome
from ._search import Search as Search
from ._search import search as search
from ._store import Store as Store
from ._store import StoreError as StoreError
from ._store_admin import delete_study as delete_study
from ._store_admin import list_studies as list_studies
from ._study import Study as Study
from ._study import load_study as load_study
from ._trial import RewardWarning as RewardWarning
from ._trial import Trial as Trial
