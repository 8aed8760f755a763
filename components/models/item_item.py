"""An item-item linear model of which items a user rates, solved in closed form (EASE).

Steck's EASE (WWW 2019) fits an item-item weight matrix B to the users × items interaction
matrix X by ridge regression of every item's column on all the others:

    min_B ‖X − X·B‖² + λ‖B‖²   subject to diag(B) = 0,

whose solution is B = I − P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹. A user's score for item i
is then x_u·B[:, i]: what the items they rated say about i, never i itself (the zero diagonal).
It is full rank where factor models are low rank, which is why it ranks well on small, dense
catalogs; the hybrid adds it to its towers' ranking scores for users it knows.

Cost: one num_items² Gramian and one inverse (40–47 s at 10K items on 2 cores, 1.6 GB at
most; pruning then works in blocks of rows). Catalogs of up to `item_item_whole_rows_up_to`
items are served the whole matrix; larger ones each item's `item_item_neighbours: k`
strongest weights (ItemNeighbours), so the model holds num_items·k of them, not num_items²
(456 MB at 10K items).
"""

import dataclasses
from typing import Optional

import numpy as np
import scipy.linalg
import scipy.sparse

ROW_BLOCK = 1024  # rows per step: of the Gramian's sparse product, and of pruning


def fit_ease(seen_splits: np.ndarray, seen_items: np.ndarray, num_items: int,
             regularization: float, scale: float = 1.0) -> np.ndarray:
    """scale·B [num_items, num_items], float32, zero diagonal, from each user's rated items.

    seen_splits/seen_items: CSR rows of the users × items matrix (as in Catalog); each
    (user, item) pair counts once, whatever its rating. Holds one float64 and one float32
    num_items² matrix at once (0.9 and 0.46 GB at 10K items): the Gramian is inverted in place.
    """
    if regularization <= 0:
        raise ValueError("regularization must be positive, or the Gramian can be singular")
    interactions = scipy.sparse.csr_matrix(
        (np.ones(len(seen_items), np.float64), seen_items, seen_splits),
        shape=(len(seen_splits) - 1, num_items))
    interactions.sum_duplicates()
    interactions.data[:] = 1.0
    # Row blocks of the Gramian: as one sparse product it is nearly dense, and its sparse form
    # (12 bytes a cell) outweighs the dense one.
    by_item = interactions.T.tocsr()
    gram = np.empty((num_items, num_items))
    for start in range(0, num_items, ROW_BLOCK):
        gram[start:start + ROW_BLOCK] = (by_item[start:start + ROW_BLOCK] @ interactions
                                          ).toarray()
    gram[np.diag_indices(num_items)] += regularization
    # The transpose is the Fortran-ordered array that LAPACK factors and inverts without a
    # copy; (Gᵀ)⁻¹ transposed back is G⁻¹.
    inverse = scipy.linalg.inv(gram.T, overwrite_a=True, check_finite=False).T
    weights = np.empty((num_items, num_items), np.float32)
    np.divide(inverse, np.diag(inverse) / -scale, out=weights, casting="same_kind")
    weights[np.diag_indices(num_items)] = 0.0
    return weights


@dataclasses.dataclass(frozen=True)
class ItemNeighbours:
    """Row j of an item-item matrix cut to its k largest-magnitude weights: what rating item j
    says about items indices[j] (ascending), by weights[j]. Without indices the rows are
    whole: weights is the matrix."""

    weights: np.ndarray  # [num_items, k] float32
    indices: Optional[np.ndarray] = None  # [num_items, k] int32

    def dense(self) -> np.ndarray:
        """The [num_items, num_items] matrix with every weight not kept zero."""
        if self.indices is None:
            return self.weights
        matrix = np.zeros((len(self.weights),) * 2, np.float32)
        np.put_along_axis(matrix, self.indices, self.weights, axis=1)
        return matrix


    def sparse(self) -> scipy.sparse.csr_matrix:
        """The matrix as sparse rows (only the weights kept)."""
        if self.indices is None:
            return scipy.sparse.csr_matrix(self.weights)
        rows = np.repeat(np.arange(len(self.weights)), self.weights.shape[1])
        return scipy.sparse.csr_matrix(
            (self.weights.ravel(), (rows, self.indices.ravel())), shape=(len(self.weights),) * 2)


def strongest_neighbours(weights: np.ndarray, k: int) -> ItemNeighbours:
    """Each row's k weights of largest magnitude (whole rows when k is 0 or ≥ the row)."""
    if k <= 0 or k >= weights.shape[1]:
        return ItemNeighbours(np.asarray(weights, np.float32))
    kept = np.empty((len(weights), k), np.float32)
    indices = np.empty((len(weights), k), np.int32)
    # In row blocks: argpartition's int64 indices of the whole matrix would be 0.9 GB at 10K.
    for start in range(0, len(weights), ROW_BLOCK):
        block = weights[start:start + ROW_BLOCK]
        strongest = np.argpartition(-np.abs(block), k - 1, axis=1)[:, :k]
        strongest.sort(axis=1)
        indices[start:start + ROW_BLOCK] = strongest
        kept[start:start + ROW_BLOCK] = np.take_along_axis(block, strongest, axis=1)
    return ItemNeighbours(kept, indices)
