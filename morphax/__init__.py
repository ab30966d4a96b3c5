"""morphax: symbolic AutoML for JAX.

Mark choices in an ordinary program (a Flax model, an optax optimizer, a
config) with hyper-values; the program becomes a search space whose decisions
search algorithms read and write as DNA.

Examples:
    >>> import morphax as mx
    >>> space = {"width": mx.oneof([16, 32, 64]), "lr": mx.floatv(1e-4, 1e-1, scale="log")}
    >>> spec = mx.dna_spec(space)
    >>> child = mx.materialize(space, spec.random_dna(0))
    >>> sorted(child)
    ['lr', 'width']
"""

from . import algorithms as algorithms
from . import backends as backends
from . import oneshot as oneshot
from . import spaces as spaces
from . import tuning as tuning
from .interop import from_pyglove as from_pyglove
from .interop import from_pyglove_dna as from_pyglove_dna
from .interop import from_pyglove_spec as from_pyglove_spec
from .interop import to_pyglove_dna as to_pyglove_dna
from .interop import to_pyglove_spec as to_pyglove_spec
from .symbolic import DNA as DNA
from .symbolic import Call as Call
from .symbolic import ChildResolver as ChildResolver
from .symbolic import Choice as Choice
from .symbolic import DecisionPoint as DecisionPoint
from .symbolic import DNAArray as DNAArray
from .symbolic import DNASpec as DNASpec
from .symbolic import DynamicChild as DynamicChild
from .symbolic import DynamicSpace as DynamicSpace
from .symbolic import Float as Float
from .symbolic import FloatV as FloatV
from .symbolic import HyperValue as HyperValue
from .symbolic import Int as Int
from .symbolic import IntV as IntV
from .symbolic import ManyChoice as ManyChoice
from .symbolic import ManyOf as ManyOf
from .symbolic import NodeType as NodeType
from .symbolic import OneOf as OneOf
from .symbolic import Pick as Pick
from .symbolic import Resolver as Resolver
from .symbolic import Space as Space
from .symbolic import SymbolicFactory as SymbolicFactory
from .symbolic import TraceResolver as TraceResolver
from .symbolic import build as build
from .symbolic import clone as clone
from .symbolic import current_resolver as current_resolver
from .symbolic import dispatch as dispatch
from .symbolic import dna_spec as dna_spec
from .symbolic import encode as encode
from .symbolic import eq as eq
from .symbolic import floatv as floatv
from .symbolic import format_path as format_path
from .symbolic import from_json as from_json
from .symbolic import get as get
from .symbolic import intv as intv
from .symbolic import iter as iter  # noqa: A004
from .symbolic import manyof as manyof
from .symbolic import materialize as materialize
from .symbolic import oneof as oneof
from .symbolic import parse_path as parse_path
from .symbolic import query as query
from .symbolic import random_sample as random_sample
from .symbolic import rebind as rebind
from .symbolic import register as register
from .symbolic import register_node as register_node
from .symbolic import resolving as resolving
from .symbolic import space as space
from .symbolic import symbolic as symbolic
from .symbolic import to_json as to_json
from .symbolic import trace as trace
from .symbolic import traverse as traverse
from .tuning import Study as Study
from .tuning import Trial as Trial
from .tuning import delete_study as delete_study
from .tuning import list_studies as list_studies
from .tuning import load_study as load_study
from .tuning import search as search

__version__ = "0.1.0"
