"""Where molecules lie in chemical space, from their Morgan fingerprints: a 2D map for the page
(:func:`chemical_space`) and clusters that a batch's ``cover`` share spreads its picks over
(:func:`clusters`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rdkit import Chem
from scipy import sparse
from sklearn.decomposition import PCA

from molpred.featurize import fingerprint
from molpred.parallel import default_workers, map_ordered

__all__ = ["chemical_space", "clusters", "MEASURED_SAMPLE"]

MEASURED_SAMPLE = 5_000  # measured molecules placed in the clusters to count them
_FP_CHUNK = 2_000


def chemical_space(fingerprints: np.ndarray) -> np.ndarray:
    """``[N, 2]`` coordinates that show how molecules spread over chemical space: the first two
    principal components of their packed Morgan fingerprints (``[N, 256]`` uint8), computed on
    the sparse bits (20,000 molecules in a fraction of a second; the dense matrix took seconds)."""
    bits = sparse.csr_matrix(np.unpackbits(fingerprints, axis=1), dtype=np.float32)
    return PCA(n_components=2, svd_solver="arpack", random_state=0).fit_transform(bits)


def clusters(
    smiles: Sequence[object],
    usable: np.ndarray,
    k: int,
    measured: Sequence[str] = (),
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` clusters of the usable candidates in chemical space: k-means on the first principal
    components of their Morgan fingerprints (of the structures as written: a place in chemical
    space needs no standardization). Returns each candidate's cluster (-1: not usable or not
    parsed) and how many ``measured`` structures (SMILES; :func:`molpred.suggest.suggest` passes
    their parent keys, which are) fall in each cluster (estimated from at most
    ``MEASURED_SAMPLE`` of them)."""
    from sklearn.cluster import KMeans

    rows, fps = _fingerprints(smiles, np.flatnonzero(usable))
    groups, counts = np.full(len(smiles), -1), np.zeros(k)
    if len(rows) <= k:
        groups[rows] = np.arange(len(rows))
        return groups, counts
    bits = sparse.csr_matrix(np.unpackbits(fps, axis=1), dtype=np.float32)
    pca = PCA(n_components=min(32, len(rows) - 1), svd_solver="arpack", random_state=seed)
    kmeans = KMeans(n_clusters=k, n_init=1, random_state=seed)
    groups[rows] = kmeans.fit_predict(pca.fit_transform(bits))
    if len(measured):
        rng = np.random.default_rng(seed)
        sample = rng.choice(len(measured), min(len(measured), MEASURED_SAMPLE), replace=False)
        _, known = _fingerprints([measured[i] for i in sample], np.arange(len(sample)))
        if len(known):
            known_bits = sparse.csr_matrix(np.unpackbits(known, axis=1), dtype=np.float32)
            where = kmeans.predict(pca.transform(known_bits))
            counts = np.bincount(where, minlength=k) * (len(measured) / len(known))
    return groups, counts


def _fingerprints(smiles: Sequence[object], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``rows`` whose structure parses and their packed fingerprints ``[n, 256]`` (long
    lists on every core: parsing is most of the cost)."""
    rows = np.asarray(rows, dtype=int)
    chunks = [[smiles[i] for i in rows[j : j + _FP_CHUNK]] for j in range(0, len(rows), _FP_CHUNK)]
    workers = default_workers() if len(chunks) > 1 else 1
    parsed, fps = [], []
    for _, _, (ok, part) in map_ordered(_chunk_fingerprints, chunks, workers):
        parsed.append(ok)
        fps.append(part)
    if not fps:
        return rows, np.empty((0, 256), np.uint8)
    return rows[np.concatenate(parsed)], np.vstack(fps)


def _chunk_fingerprints(smiles: list[object]) -> tuple[np.ndarray, np.ndarray]:
    ok, fps = np.zeros(len(smiles), dtype=bool), []
    for i, text in enumerate(smiles):
        mol = Chem.MolFromSmiles(text) if isinstance(text, str) else None
        if mol is not None:
            ok[i] = True
            fps.append(fingerprint(mol))
    return ok, np.vstack(fps) if fps else np.empty((0, 256), np.uint8)
