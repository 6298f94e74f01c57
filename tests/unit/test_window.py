import pytest

from didtv.pipeline.window import sliding_windows, window_indices


@pytest.mark.parametrize(
    "n, size, pad, expected",
    [
        (5, 7, "replicate", [[0, 0, 0, 0, 1, 2, 3], [0, 0, 0, 1, 2, 3, 4], [0, 0, 1, 2, 3, 4, 4],
                             [0, 1, 2, 3, 4, 4, 4], [1, 2, 3, 4, 4, 4, 4]]),
        (5, 7, "reflect", [[3, 2, 1, 0, 1, 2, 3], [2, 1, 0, 1, 2, 3, 4], [1, 0, 1, 2, 3, 4, 3],
                           [0, 1, 2, 3, 4, 3, 2], [1, 2, 3, 4, 3, 2, 1]]),
        (1, 7, "replicate", [[0] * 7]),
        (1, 7, "reflect", [[0] * 7]),
        (3, 1, "replicate", [[0], [1], [2]]),
        (0, 7, "replicate", []),
        (2, 3, "reflect", [[1, 0, 1], [0, 1, 0]]),
    ],
)
def test_window_indices_table(n, size, pad, expected):
    assert window_indices(n, size, pad) == expected


@pytest.mark.parametrize("n", range(0, 20))
@pytest.mark.parametrize("size", [1, 3, 5, 7, 9])
def test_sliding_windows_match_indices(n, size):
    frames = [f"f{i}" for i in range(n)]
    got = list(sliding_windows(iter(frames), size))
    want = [[frames[j] for j in idx] for idx in window_indices(n, size)]
    assert got == want


def test_every_frame_gives_one_window_centred_on_it():
    for n in (1, 2, 6, 7, 8, 30):
        wins = window_indices(n, 7)
        assert len(wins) == n
        assert [w[3] for w in wins] == list(range(n))


def test_sliding_windows_memory_is_bounded():
    # A generator that fails if more than size + 1 frames are pulled ahead of the consumer.
    pulled = []

    def source():
        for i in range(100):
            pulled.append(i)
            yield i

    for k, win in enumerate(sliding_windows(source(), 7)):
        assert win[3] == k
        assert len(pulled) - k <= 4 + 1  # centre + 3 ahead (+1 read in progress)


@pytest.mark.parametrize("bad", [0, 2, -1])
def test_bad_size(bad):
    with pytest.raises(ValueError):
        window_indices(5, bad)
    with pytest.raises(ValueError):
        list(sliding_windows([1, 2], bad))


def test_bad_pad():
    with pytest.raises(ValueError, match="pad mode"):
        window_indices(5, 7, "wrap")
