"""Adapters to other libraries: PyGlove DNASpecs, DNA and hyper-value programs.

PyGlove (`pyglove`, imported as `pg`) describes a space with a tree of
`pg.geno` specs: a `pg.geno.Space` holds decision points (`pg.geno.Choices`
for `pg.oneof`/`pg.manyof`, `pg.geno.Float` for `pg.floatv`), and every
candidate of a choice is a `pg.geno.Space` of its own (conditional decisions).
A morphax :class:`DNASpec` has the same structure, flattened into columns:

* a `pg.geno.Choices` with `num_choices=1` is a morphax :class:`Choice`;
  one with `num_choices=k > 1` is `k` consecutive :class:`Choice` picks (a
  `manyof`), each with its own copy of the candidates' sub-spaces;
* a `pg.geno.Float` is a morphax :class:`Float` (scale `None`/"linear" or
  "log"; PyGlove's "rlog" has no morphax equivalent);
* PyGlove has no int decision, so a morphax :class:`Int` becomes a
  `pg.geno.Choices` over the candidates `low, ..., high` (its DNA value is
  the index `value - low`), marked in `hints` so that it converts back to an
  :class:`Int`.

PyGlove DNA is a tree (`pg.DNA(value, children)`); morphax DNA is the flat,
depth-first list of the same values, which is what `pg.DNA.to_numbers()`
gives (except for the `Int` offset above).

Decision ids follow morphax's rules (`a[=1].x` for decision `x` in candidate 1
of choice `a`, where PyGlove writes `a[=1/2].x`); the morphax facts a PyGlove
spec has no field for (ids and locations of define-by-run decisions, int
decisions, a name that a define-by-run decision repeats under several
branches, where PyGlove needs unique names) travel in the decision point's
`hints` under the key `"__morphax__"`, so that
`from_pyglove_spec(to_pyglove_spec(spec)) == spec`. Candidate literals are
kept as text; they agree with PyGlove's for plain-value candidates (`"'relu'"`,
`16`), while PyGlove writes out a structured candidate where morphax names its
type, so specs with such candidates agree in structure but not in
fingerprint.

:func:`from_pyglove` converts a PyGlove program (hyper-values inside
`pg.Dict`, `pg.List` and `pg.Object`) into a morphax program whose DNA has the
same layout. PyGlove is imported only when one of these functions is called.
"""

from ._pg_dna import from_pyglove_dna as from_pyglove_dna
from ._pg_dna import to_pyglove_dna as to_pyglove_dna
from ._pg_hyper import from_pyglove as from_pyglove
from ._pg_spec import from_pyglove_spec as from_pyglove_spec
from ._pg_spec import to_pyglove_spec as to_pyglove_spec
