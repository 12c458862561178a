"""The RFC 6962 / RFC 9162 §2.1 Merkle tree over the audit events (SPEC §15).

Leaf i is SHA-256(0x00 ‖ the 32 bytes of event i+1's hash), an inner node SHA-256(0x01 ‖
left ‖ right); the tree over n leaves splits at the largest power of two below n. Only
hashlib: no database, no I/O.

`Range` is a compact range (the transparency-dev `compact` package's idea): the hashes of
the fewest perfect, aligned subtrees covering leaves [begin, end). A range from 0 is the
tree's right edge — at most log2(n) hashes, its *frontier* — from which the root follows;
a checkpoint stores it, so the next checkpoint appends only the events since (`extend`),
and ranges checked in separate processes join (`join`). Proofs (`inclusion_proof`,
`consistency_proof`) are built from any way of getting a subtree's hash, and checked
(`verify_inclusion`, `verify_consistency`) exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

_sha256 = hashlib.sha256
_digest = type(hashlib.sha256()).digest
_LEAF, _NODE = b"\x00", b"\x01"
EMPTY_ROOT = _sha256(b"").digest()  # the root of the tree with no leaves (RFC 9162 §2.1.1)
HASH_SIZE = 32
Seen = Callable[[int, int, Sequence[bytes]], None]  # (level, index of the first, node hashes)


def leaf_hash(data: bytes) -> bytes:
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE + left + right).digest()


def event_leaves(hashes: Iterable[str]) -> list[bytes]:
    """The leaf hashes of events given by their hex hashes (ValueError for one not hex)."""
    return list(map(_digest, map(_sha256, map(_LEAF.__add__, map(bytes.fromhex, hashes)))))


def _level_up(hashes: Sequence[bytes]) -> list[bytes]:
    """The parents of consecutive pairs, all in C loops (map over the two halves)."""
    return list(map(_digest, map(_sha256, map(_NODE.__add__, map(bytes.__add__, hashes[0::2], hashes[1::2])))))


def _split(n: int) -> int:
    """The largest power of two smaller than n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (RFC 9162 §2.1.1)."""
    r = Range(0)
    r.extend(leaves)
    return r.root()


@dataclass
class Range:
    """The perfect aligned subtrees covering leaves [begin, end): ``nodes`` holds (level,
    index, hash) left to right, level 0 being leaves and node (h, i) covering leaves
    [i·2^h, (i+1)·2^h)."""

    begin: int
    end: int = -1
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.end < 0:
            self.end = self.begin

    @classmethod
    def frontier(cls, size: int, hashes: Sequence[bytes]) -> Range:
        """The range [0, size) from its stored frontier (the hashes left to right)."""
        nodes, start = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                nodes.append((level, start >> level, b""))
                start += 1 << level
        if len(nodes) != len(hashes) or any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"a frontier of {size} leaves has {len(nodes)} hashes of 32 bytes, not {len(hashes)}")
        return cls(0, size, [(lvl, i, h) for (lvl, i, _), h in zip(nodes, hashes, strict=True)])

    def hashes(self) -> list[bytes]:
        return [h for _, _, h in self.nodes]

    def copy(self) -> Range:
        return Range(self.begin, self.end, list(self.nodes))

    def _push(self, level: int, index: int, digest: bytes, seen: Seen | None = None) -> None:
        nodes = self.nodes
        nodes.append((level, index, digest))
        while len(nodes) >= 2:  # a right child next to its left sibling: they merge into their parent
            lvl, i, right = nodes[-1]
            plvl, pi, left = nodes[-2]
            if plvl != lvl or pi != i - 1 or i & 1 == 0:
                break
            del nodes[-2:]
            parent = node_hash(left, right)
            nodes.append((lvl + 1, i >> 1, parent))
            if seen is not None:
                seen(lvl + 1, i >> 1, (parent,))
        self.end = (index + 1) << level

    def extend(self, leaves: Sequence[bytes], seen: Seen | None = None) -> None:
        """Append leaf hashes: each run that fills a perfect aligned subtree is hashed a level
        at a time over the whole run, so the Python work per leaf is a few C-level maps.
        ``seen(level, first index, hashes)`` is told every node made (a prover's collector)."""
        i, n = 0, len(leaves)
        while i < n:
            end = self.end
            size = end & -end if end else 1 << 62  # the largest subtree that may start at `end`
            while size > n - i:
                size >>= 1
            hashes: Sequence[bytes] = leaves[i:i + size]
            level = 0
            if seen is not None:
                seen(0, end, hashes)
            while len(hashes) > 1:
                hashes, level = _level_up(hashes), level + 1
                if seen is not None:
                    seen(level, end >> level, hashes)
            self._push(level, end >> level, hashes[0], seen)
            i += size

    def join(self, other: Range) -> None:
        """Append the range that starts where this one ends."""
        if other.begin != self.end:
            raise ValueError(f"range [{other.begin}, {other.end}) does not follow [{self.begin}, {self.end})")
        for level, index, digest in other.nodes:
            self._push(level, index, digest)
        self.end = other.end

    def root(self) -> bytes:
        """The Merkle tree hash of the leaves covered (a range from 0: the tree's root)."""
        if not self.nodes:
            return EMPTY_ROOT
        digest = self.nodes[-1][2]
        for _, _, left in reversed(self.nodes[:-1]):
            digest = node_hash(left, digest)
        return digest


# -- proofs (RFC 9162 §2.1.3, §2.1.4) -----------------------------------------------------
Subtree = Callable[[int, int], bytes]  # MTH of leaves [begin, end)


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(index, D[0:size]), the hashes from the leaf's sibling up to the root's child."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    return path[::-1]


def consistency_proof(old: int, new: int, subtree: Subtree) -> list[bytes]:
    """PROOF(old, D[0:new]) (RFC 9162 §2.1.4.1)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    if old in (0, new):
        return []
    proof: list[bytes] = []
    lo, hi, complete = 0, new, True
    while old - lo != hi - lo:  # SUBPROOF(m, D[lo:hi], complete)
        k = _split(hi - lo)
        if old - lo <= k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo, complete = lo + k, False
    if not complete:
        proof.append(subtree(lo, hi))
    return proof[::-1]


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root a proof leads to (RFC 9162 §2.1.3.2), or None when the proof cannot be one."""
    if not 0 <= index < size or any(len(p) != HASH_SIZE for p in proof):
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    return root_from_inclusion(index, size, leaf, proof) == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``new`` leaves an append-only extension of ``old``'s?"""
    if not 0 <= old <= new or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old == new:
        return old_root == new_root and not proof
    if old == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class Subtrees:
    """Subtree hashes for proofs over a list of leaf hashes held in memory (tests, small
    trees; the database's prover gathers only the subtrees it needs, `duban.service.proofs`)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves

    def __call__(self, begin: int, end: int) -> bytes:
        return root_of(self.leaves[begin:end])


def needed_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The perfect aligned subtrees (level, index) whose hashes make MTH(D[begin:end]) of a
    range reached by the proofs' recursion (its begin aligned to its split), left to right."""
    out: list[tuple[int, int]] = []
    lo = begin
    while lo < end:
        size = lo & -lo if lo else 1 << 62
        while size > end - lo:
            size >>= 1
        level = size.bit_length() - 1
        out.append((level, lo >> level))
        lo += size
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH from the decomposition `needed_subtrees` gives (right to left, as `Range.root`)."""
    digest = hashes[-1]
    for left in reversed(hashes[:-1]):
        digest = node_hash(left, digest)
    return digest


class Collector:
    """Gathers the perfect subtrees a set of proofs needs in one pass over the leaves: give
    it as ``seen`` to `Range.extend`, then answer proofs' `Subtree` calls with it."""

    def __init__(self, wanted: Iterable[tuple[int, int]]) -> None:
        self.wanted: dict[int, set[int]] = {}
        for level, index in wanted:
            self.wanted.setdefault(level, set()).add(index)
        self.found: dict[tuple[int, int], bytes] = {}

    @classmethod
    def for_proofs(cls, indices: Iterable[int], size: int) -> Collector:
        """What the inclusion proofs of these leaves in a tree of ``size`` leaves need."""
        wanted: list[tuple[int, int]] = []

        def note(begin: int, end: int) -> bytes:
            wanted.extend(needed_subtrees(begin, end))
            return b""

        for index in indices:
            inclusion_proof(index, size, note)
        return cls(wanted)

    def __call__(self, level: int, first: int, hashes: Sequence[bytes]) -> None:
        wanted = self.wanted.get(level)
        if not wanted:
            return
        last = first + len(hashes)
        for index in [i for i in wanted if first <= i < last] if len(wanted) < len(hashes) else (
                i for i in range(first, last) if i in wanted):
            self.found[level, index] = hashes[index - first]

    def subtree(self, begin: int, end: int) -> bytes:
        return fold([self.found[node] for node in needed_subtrees(begin, end)])
