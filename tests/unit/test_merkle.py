"""The Merkle tree against the published RFC 6962 test vectors, and its properties.

Vectors copied from github.com/transparency-dev/merkle: testonly/constants.go (the eight
leaf inputs, the roots of the trees of 0–8 of them) and proof/verify_test.go (inclusion and
consistency proofs, and the ways its tests corrupt them).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from duban.engine.merkle import (
    EMPTY_ROOT,
    Collector,
    Range,
    Subtrees,
    consistency_proof,
    event_leaves,
    inclusion_proof,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

INPUTS = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf number counted from 1, tree size, proof)
INCLUSION = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
LEAVES = [leaf_hash(x) for x in INPUTS]


def flipped(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ bit]) + out[i][1:]
    return out


class TestVectors:
    @pytest.mark.parametrize("size", range(9))
    def test_roots(self, size: int) -> None:
        assert root_of(LEAVES[:size]) == ROOTS[size]

    def test_the_empty_tree(self) -> None:
        assert root_of([]) == EMPTY_ROOT == ROOTS[0]

    @pytest.mark.parametrize("size", range(9))
    def test_roots_when_appended_one_leaf_at_a_time(self, size: int) -> None:
        tree = Range(0)
        for leaf in LEAVES[:size]:
            tree.extend([leaf])
        assert tree.root() == ROOTS[size]
        # and from the stored frontier, as a checkpoint keeps it
        assert Range.frontier(size, tree.hashes()).root() == ROOTS[size]

    @pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
    def test_inclusion_proofs(self, leaf: int, size: int, proof: list[str]) -> None:
        expected = [bytes.fromhex(h) for h in proof]
        assert inclusion_proof(leaf - 1, size, Subtrees(LEAVES[:size])) == expected
        assert verify_inclusion(leaf - 1, size, LEAVES[leaf - 1], expected, ROOTS[size])

    @pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION[1:])
    def test_corrupted_inclusion_proofs_are_refused(self, leaf: int, size: int, proof: list[str]) -> None:
        good, index, root, lh = [bytes.fromhex(h) for h in proof], leaf - 1, ROOTS[size], LEAVES[leaf - 1]
        probes = [
            (index - 1, size, lh, good, root), (index + 1, size, lh, good, root), (index ^ 2, size, lh, good, root),
            (index, size * 2, lh, good, root), (index, size // 2, lh, good, root),
            (index, size, b"WrongLeaf", good, root), (index, size, lh, good, EMPTY_ROOT),
            (index, size, lh, good, SOME_HASH), (index, size, lh, [*good, b""], root),
            (index, size, lh, [*good, root], root), (index, size, lh, [b"", *good], root),
            (index, size, lh, [root, *good], root), (index, size, lh, good[:-1], root),
            *((index, size, lh, flipped(good, i, 8), root) for i in range(len(good))),
        ]
        if len(good) > 1:
            probes.append((index, size, lh, [good[0], SOME_HASH, *good[1:]], root))
        for probe in probes:
            assert not verify_inclusion(*probe), probe

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
    def test_consistency_proofs(self, old: int, new: int, proof: list[str]) -> None:
        expected = [bytes.fromhex(h) for h in proof]
        assert consistency_proof(old, new, Subtrees(LEAVES[:new])) == expected
        assert verify_consistency(old, new, ROOTS[old], ROOTS[new], expected)

    @pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
    def test_corrupted_consistency_proofs_are_refused(self, old: int, new: int, proof: list[str]) -> None:
        good, r1, r2 = [bytes.fromhex(h) for h in proof], ROOTS[old], ROOTS[new]
        probes = [
            (old - 1, new, r1, r2, good), (old + 1, new, r1, r2, good), (old ^ 2, new, r1, r2, good),
            (old, new * 2, r1, r2, good), (old, new // 2, r1, r2, good),
            (old, new, b"WrongRoot", r2, good), (old, new, r1, b"WrongRoot", good), (old, new, r2, r1, good),
            (old, new, r1, r2, []), (old, new, r1, r2, [*good, b""]), (old, new, r1, r2, [*good, r1]),
            (old, new, r1, r2, [*good, r2]), (old, new, r1, r2, [b"", *good]), (old, new, r1, r2, [r1, *good]),
            (old, new, r1, r2, [r2, *good]), (old, new, r1, r2, [good[0], *good]), (old, new, r1, r2, good[:-1]),
            *((old, new, r1, r2, flipped(good, i, 16)) for i in range(len(good))),
        ]
        for probe in probes:
            assert not verify_consistency(*probe), probe

    def test_trivial_consistency(self) -> None:
        assert verify_consistency(0, 0, ROOTS[0], ROOTS[0], [])
        assert verify_consistency(0, 5, b"anything", ROOTS[5], [])
        assert not verify_consistency(1, 1, ROOTS[1], ROOTS[2], [])  # same size, another root
        assert not verify_consistency(2, 1, ROOTS[2], ROOTS[1], [])  # back in time
        assert not verify_consistency(1, 1, ROOTS[1], ROOTS[1], [EMPTY_ROOT])  # a proof where none is due

    def test_event_leaves_hash_the_raw_event_hash(self) -> None:
        assert event_leaves(["00" * 32]) == [leaf_hash(bytes(32))]


# -- properties ---------------------------------------------------------------------------
def leaves_of(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"{salt}:{i}".encode()) for i in range(n)]


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=70))
def test_every_inclusion_proof_of_every_leaf_verifies(n: int) -> None:
    leaves = leaves_of(n)
    root, subtrees = root_of(leaves), Subtrees(leaves)
    for i in range(n):
        assert verify_inclusion(i, n, leaves[i], inclusion_proof(i, n, subtrees), root)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_a_changed_leaf_never_verifies(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    other = data.draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != leaves[i]))
    proof = inclusion_proof(i, n, Subtrees(leaves))
    assert not verify_inclusion(i, n, other, proof, root_of(leaves))
    changed = [*leaves[:i], other, *leaves[i + 1:]]  # the tree built over the changed leaf has another root
    assert root_of(changed) != root_of(leaves)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=70), st.data())
def test_consistency_between_any_two_sizes_verifies(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(min_value=0, max_value=n))
    leaves = leaves_of(n)
    proof = consistency_proof(m, n, Subtrees(leaves))
    assert verify_consistency(m, n, root_of(leaves[:m]), root_of(leaves), proof)
    if 0 < m < n:  # the old tree with one leaf changed is not a prefix of the new one
        assert not verify_consistency(m, n, root_of(leaves_of(m, salt=1)), root_of(leaves), proof)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=6))
def test_ranges_appended_in_pieces_and_joined_give_the_one_root(cuts: list[int]) -> None:
    """What a checkpoint (frontier + the events since) and a parallel verify (ranges joined) rely on."""
    leaves = leaves_of(sum(cuts))
    whole, start = Range(0), 0
    for size in cuts:
        part = Range(start)
        part.extend(leaves[start:start + size])
        whole.join(part)
        start += size
        assert Range.frontier(start, whole.hashes()).root() == root_of(leaves[:start])
    assert whole.root() == root_of(leaves)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_a_collector_gathers_exactly_the_proofs_nodes_in_one_pass(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    wanted = data.draw(st.sets(st.integers(min_value=0, max_value=n - 1), min_size=1))
    collect = Collector.for_proofs(wanted, n)
    tree = Range(0)
    for chunk in range(0, n, 7):
        tree.extend(leaves[chunk:chunk + 7], collect)
    for i in wanted:
        assert inclusion_proof(i, n, collect.subtree) == inclusion_proof(i, n, Subtrees(leaves))


def test_a_frontier_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="frontier of 5 leaves"):
        Range.frontier(5, [bytes(32)])
