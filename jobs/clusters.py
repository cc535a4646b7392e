"""Similar texts into groups: agglomerative clustering of their embeddings.

Every text starts as a group of its own; the two groups whose centroids are most alike (cosine
of the mean vectors) merge, and again, while that similarity is at least ``threshold``. Centroid
linkage keeps a group together by what its members share, so one odd member does not chain two
unrelated groups as single linkage would; the threshold is absolute, so the number of patterns
follows from the week's mistakes instead of being guessed. With the shipped MiniLM embedder the
default 0.6 joins paraphrases (three wordings of a calendar timeout, similarity 0.79-0.86; two
"overloaded" errors, 0.96) and keeps apart a different tool's failure (0.38) and a correction
about the same day (0.66 joins two corrections of the date, 0.46-0.50 does not join a third
phrased differently); ``test_with_minilm_paraphrases_join_and_different_failures_stay_apart``
pins this.

Deterministic: ties go to the lower index, groups come out largest first, then by their first
member. A group's representative is its member closest to the centroid: the quote that stands
for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

DEFAULT_THRESHOLD = 0.6


@dataclass(frozen=True)
class Cluster:
    #: Indices into the input, in input order.
    members: tuple[int, ...]
    representative: int
    #: Mean cosine of the members to their centroid: 1.0 for identical texts.
    cohesion: float

    @property
    def size(self) -> int:
        return len(self.members)


def cluster(vectors: NDArray[np.floating], threshold: float = DEFAULT_THRESHOLD) -> list[Cluster]:
    rows = np.asarray(vectors, dtype=np.float64)
    n = len(rows)
    if n == 0:
        return []
    unit = _normalised(rows)
    sums = unit.copy()
    groups: list[list[int]] = [[i] for i in range(n)]
    centroids = unit.copy()
    similar = centroids @ centroids.T
    np.fill_diagonal(similar, -np.inf)
    while True:
        best = int(np.argmax(similar))
        a, b = divmod(best, n)
        if similar[a, b] < threshold:
            break
        a, b = min(a, b), max(a, b)
        sums[a] += sums[b]
        groups[a] += groups[b]
        groups[b] = []
        centroids[a] = _normalised(sums[a : a + 1])[0]
        row = centroids @ centroids[a]
        row[[i for i in range(n) if not groups[i]]] = -np.inf
        row[a] = -np.inf
        similar[a, :] = row
        similar[:, a] = row
        similar[b, :] = -np.inf
        similar[:, b] = -np.inf
    found = [_cluster(sorted(g), unit, centroids[i]) for i, g in enumerate(groups) if g]
    return sorted(found, key=lambda c: (-c.size, c.members[0]))


def _cluster(
    members: list[int], unit: NDArray[np.float64], centroid: NDArray[np.float64]
) -> Cluster:
    closeness = unit[members] @ centroid
    return Cluster(
        members=tuple(members),
        representative=members[int(np.argmax(closeness))],
        cohesion=round(float(np.mean(closeness)), 4),
    )


def _normalised(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)
