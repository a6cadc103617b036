from rag.fusion import rrf, weighted


def test_rrf_rewards_agreement_between_lists() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    sparse = [("b", 12.0), ("d", 3.0)]
    fused = rrf([dense, sparse], k=60)
    assert [doc for doc, _ in fused] == ["b", "a", "d", "c"]
    assert fused[0][1] == 1 / 61 + 1 / 62


def test_rrf_ignores_score_scales() -> None:
    assert [d for d, _ in rrf([[("x", 1000.0), ("y", 999.0)]])] == [d for d, _ in rrf([[("x", 0.2), ("y", 0.1)]])]


def test_weighted_normalises_each_list() -> None:
    dense = [("a", 0.9), ("b", 0.5)]
    sparse = [("b", 20.0), ("a", 10.0)]
    assert dict(weighted([dense, sparse], [0.5, 0.5])) == {"a": 0.5, "b": 0.5}
    assert weighted([dense, sparse], [0.8, 0.2])[0][0] == "a"


def test_empty_lists_fuse_to_nothing() -> None:
    assert rrf([[], []]) == []
    assert weighted([[], []], [0.5, 0.5]) == []
